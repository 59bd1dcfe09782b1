"""Tests for quaxspec.messages: exact round trips and strict rejection of malformed bytes."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from quaxspec.messages import MessageDecodeError, Partial, RawChunk
from quaxspec.moments import Moments

HEADER = 56  # both v1 headers
MAX_U32 = 2**32 - 1
MessageType = type[RawChunk] | type[Partial]


def _pad8(n: int) -> int:
    return n + (-n % 8)


def _bits(x: float) -> bytes:
    """A float's exact bits: distinguishes -0.0 from 0.0."""
    return struct.pack("<d", x)


def _raw_chunk(**overrides: Any) -> RawChunk:
    n_fft, count = overrides.pop("n_fft", 8), overrides.pop("count", 3)
    rng = np.random.default_rng(1)
    fields: dict[str, Any] = {
        "run_id": "run-2024-06-01",
        "file_number": 123456,
        "first_slice": 40,
        "total_slices": 2730,
        "n_fft": n_fft,
        "fs": 2.0e6,
        "f_lo": 10.353e9,
        "daq_time": 1_717_200_000.25,
        "i": rng.standard_normal((count, n_fft)).astype(np.float32),
        "q": rng.standard_normal((count, n_fft)).astype(np.float32),
    }
    fields.update(overrides)
    return RawChunk(**fields)


def _partial(**overrides: Any) -> Partial:
    n_fft = overrides.pop("n_fft", 8)
    rng = np.random.default_rng(2)
    fields: dict[str, Any] = {
        "run_id": "run-2024-06-01",
        "file_number": 99999,
        "chunk_id": 40,
        "total_slices": 2730,
        "n_fft": n_fft,
        "fs": 2.0e6,
        "f_lo": 10.353e9,
        "daq_time": 1_717_200_000.25,
        "moments": Moments(np.int64(64), rng.random(n_fft) * 1e-18, rng.random(n_fft) * 1e-36),
    }
    fields.update(overrides)
    return Partial(**fields)


def _assert_same_origin(decoded: RawChunk | Partial, expected: RawChunk | Partial) -> None:
    assert decoded.run_id == expected.run_id
    assert decoded.file_number == expected.file_number
    assert decoded.total_slices == expected.total_slices
    assert decoded.n_fft == expected.n_fft
    assert _bits(decoded.fs) == _bits(expected.fs)
    assert _bits(decoded.f_lo) == _bits(expected.f_lo)
    assert _bits(decoded.daq_time) == _bits(expected.daq_time)


def _assert_same_chunk(decoded: RawChunk, expected: RawChunk) -> None:
    assert type(decoded) is RawChunk
    _assert_same_origin(decoded, expected)
    assert decoded.first_slice == expected.first_slice
    assert decoded.n_slices == expected.n_slices
    for got, want in ((decoded.i, expected.i), (decoded.q, expected.q)):
        assert got.dtype == np.dtype("<f4")
        assert got.shape == want.shape
        assert got.tobytes() == np.asarray(want, "<f4").tobytes()


def _assert_same_partial(decoded: Partial, expected: Partial) -> None:
    assert type(decoded) is Partial
    _assert_same_origin(decoded, expected)
    assert decoded.chunk_id == expected.chunk_id
    assert decoded.moments.n == expected.moments.n
    for got, want in (
        (decoded.moments.mean, expected.moments.mean),
        (decoded.moments.m2, expected.moments.m2),
    ):
        assert got.dtype == np.float64
        assert got.tobytes() == want.tobytes()


# --- explicit round trips and the documented layout ----------------------------------------


def test_raw_chunk_round_trip() -> None:
    chunk = _raw_chunk()
    # Bit patterns a lossy codec would change: NaN payloads, signed zero, subnormals, inf.
    chunk.i[0, :5] = np.array(
        [0x7FC00001, 0xFFA00000, 0x80000000, 0x00000001, 0x7F800000], "<u4"
    ).view("<f4")
    data = chunk.to_bytes()
    assert len(data) == HEADER + _pad8(len(chunk.run_id)) + 2 * 3 * 8 * 4

    decoded = RawChunk.from_bytes(data)

    _assert_same_chunk(decoded, chunk)
    assert not decoded.i.flags.writeable
    assert not decoded.q.flags.writeable
    assert np.shares_memory(decoded.i, np.frombuffer(data, np.uint8))  # zero-copy


def test_partial_round_trip() -> None:
    partial = _partial(f_lo=-0.0, daq_time=-1.5)
    partial.moments.mean[:3] = [0.0, -0.0, 5e-324]
    partial.moments.m2[:3] = [0.0, -0.0, 1.7976931348623157e308]
    data = partial.to_bytes()
    assert len(data) == HEADER + _pad8(len(partial.run_id)) + 2 * 8 * 8

    _assert_same_partial(Partial.from_bytes(data), partial)


@pytest.mark.parametrize(
    "run_id", ["r", "12345678", "123456789", "µ-run/é", "🛰" * 63, "é" * 127 + "a"]
)
@pytest.mark.parametrize("kind", ["chunk", "partial"])
def test_run_id_round_trip_and_padding(run_id: str, kind: str) -> None:
    message = _raw_chunk(run_id=run_id) if kind == "chunk" else _partial(run_id=run_id)
    data = message.to_bytes()
    length = len(run_id.encode())
    assert struct.unpack_from("<H", data, 6)[0] == length
    assert data[HEADER : HEADER + length] == run_id.encode()
    assert data[HEADER + length : HEADER + _pad8(length)] == b"\0" * (-length % 8)
    assert type(message).from_bytes(data).run_id == run_id


@pytest.mark.parametrize("run_id", ["", "x" * 256, "é" * 128])
def test_run_id_length_is_checked_when_building(run_id: str) -> None:
    with pytest.raises(ValueError, match="run id"):
        _raw_chunk(run_id=run_id)
    with pytest.raises(ValueError, match="run id"):
        _partial(run_id=run_id)


def test_raw_chunk_decodes_hand_built_bytes() -> None:
    """The layout in the module docstring, built without the encoder."""
    i = np.arange(6, dtype="<f4")
    q = -np.arange(6, dtype="<f4") - 0.5
    header = (
        b"QXRC"
        + bytes([1, 0])
        + struct.pack("<H", 3)
        + struct.pack("<IIIII", 7, 10, 2, 12, 3)  # file, first slice, count, total, n_fft
        + b"\0" * 4
        + struct.pack("<ddd", 2.0e6, 1.0e10, 1.7e9)
    )
    assert len(header) == HEADER
    data = header + b"abc" + b"\0" * 5 + i.tobytes() + q.tobytes()

    chunk = RawChunk.from_bytes(data)

    assert (chunk.run_id, chunk.file_number, chunk.first_slice) == ("abc", 7, 10)
    assert (chunk.n_slices, chunk.total_slices, chunk.n_fft) == (2, 12, 3)
    assert (chunk.fs, chunk.f_lo, chunk.daq_time) == (2.0e6, 1.0e10, 1.7e9)
    assert chunk.i.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert chunk.q.tolist() == [[-0.5, -1.5, -2.5], [-3.5, -4.5, -5.5]]
    assert chunk.to_bytes() == data


def test_partial_decodes_hand_built_bytes() -> None:
    """The layout in the module docstring, built without the encoder."""
    mean = np.array([1.0, 2.0], "<f8")
    m2 = np.array([0.25, 0.0], "<f8")
    header = (
        b"QXPT"
        + bytes([1, 0])
        + struct.pack("<H", 8)
        + struct.pack("<IIII", 5, 30, 100, 2)  # file, chunk id, total, n_fft
        + struct.pack("<dddq", 2.0e6, -3.0, 1.7e9, 17)
    )
    assert len(header) == HEADER
    data = header + b"run-0001" + mean.tobytes() + m2.tobytes()

    partial = Partial.from_bytes(data)

    assert (partial.run_id, partial.file_number, partial.chunk_id) == ("run-0001", 5, 30)
    assert (partial.total_slices, partial.n_fft, partial.moments.n) == (100, 2, 17)
    assert (partial.fs, partial.f_lo, partial.daq_time) == (2.0e6, -3.0, 1.7e9)
    assert partial.moments.mean.tolist() == [1.0, 2.0]
    assert partial.moments.m2.tolist() == [0.25, 0.0]
    assert partial.to_bytes() == data


@pytest.mark.parametrize("kind", ["chunk", "partial"])
def test_decoding_accepts_bytearray_and_memoryview(kind: str) -> None:
    message = _raw_chunk() if kind == "chunk" else _partial()
    data = message.to_bytes()
    cls = type(message)
    for buffer in (bytearray(data), memoryview(data)):
        assert cls.from_bytes(buffer).to_bytes() == data


@pytest.mark.parametrize("cls", [RawChunk, Partial])
@pytest.mark.parametrize("value", ["QXRC", None, 12, [1, 2]])
def test_decoding_a_non_bytes_object_fails(cls: MessageType, value: object) -> None:
    with pytest.raises(MessageDecodeError, match="expected bytes"):
        cls.from_bytes(value)  # type: ignore[arg-type]


# --- malformed messages --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "data", "expected_magic"),
    [
        (RawChunk, _partial().to_bytes(), "QXRC"),
        (Partial, _raw_chunk().to_bytes(), "QXPT"),
        (RawChunk, b"QXrc" + _raw_chunk().to_bytes()[4:], "QXRC"),
    ],
    ids=["partial-as-chunk", "chunk-as-partial", "lower-case-magic"],
)
def test_wrong_magic_is_rejected(cls: MessageType, data: bytes, expected_magic: str) -> None:
    with pytest.raises(MessageDecodeError, match="magic") as excinfo:
        cls.from_bytes(data)
    assert expected_magic in str(excinfo.value)


def _patched(data: bytes, offset: int, raw: bytes) -> bytes:
    return data[:offset] + raw + data[offset + len(raw) :]


def _partial_arrays_offset(partial: Partial) -> tuple[int, int]:
    mean_at = HEADER + _pad8(len(partial.run_id.encode()))
    return mean_at, mean_at + partial.n_fft * 8


@pytest.mark.parametrize(
    ("array", "index", "value"),
    [
        ("mean", 0, math.nan),
        ("mean", 7, math.inf),
        ("mean", 3, -math.inf),
        ("m2", 0, -1e-300),
        ("m2", 7, -1.0),
        ("m2", 2, math.nan),
        ("m2", 5, math.inf),
    ],
)
def test_partial_with_bad_statistics_is_rejected(array: str, index: int, value: float) -> None:
    partial = _partial()
    data = partial.to_bytes()
    assert Partial.from_bytes(data).n_fft == 8  # the unpatched message is fine
    mean_at, m2_at = _partial_arrays_offset(partial)
    offset = (mean_at if array == "mean" else m2_at) + 8 * index
    with pytest.raises(MessageDecodeError, match=r"non-finite|negative"):
        Partial.from_bytes(_patched(data, offset, struct.pack("<d", value)))


@pytest.mark.parametrize("n", [0, -1, -(2**63), 2731])
def test_partial_with_a_bad_count_is_rejected(n: int) -> None:
    data = _partial().to_bytes()  # total_slices 2730
    with pytest.raises(MessageDecodeError, match="count"):
        Partial.from_bytes(_patched(data, 48, struct.pack("<q", n)))


@pytest.mark.parametrize("kind", ["chunk", "partial"])
@pytest.mark.parametrize(
    "bad", [b"\xff\xfe\xfd\xfc", b"ab\x80d", b"ab\xc3", b"\xed\xa0\x80a", b"\xc0\xafab"]
)
def test_run_id_that_is_not_utf8_is_rejected(kind: str, bad: bytes) -> None:
    message = _raw_chunk(run_id="abcd") if kind == "chunk" else _partial(run_id="abcd")
    data = message.to_bytes()
    patched = _patched(data, 6, struct.pack("<H", len(bad)))
    patched = _patched(patched, HEADER, bad)
    with pytest.raises(MessageDecodeError, match="UTF-8"):
        type(message).from_bytes(patched)


@pytest.mark.parametrize("kind", ["chunk", "partial"])
@pytest.mark.parametrize("length", [0, 256, 65535])
def test_run_id_length_field_out_of_range_is_rejected(kind: str, length: int) -> None:
    message = _raw_chunk() if kind == "chunk" else _partial()
    data = _patched(message.to_bytes(), 6, struct.pack("<H", length))
    with pytest.raises(MessageDecodeError):
        type(message).from_bytes(data)


@pytest.mark.parametrize(
    ("offset", "fmt", "value"),
    [
        (12, "<I", 2730),  # first slice + 3 slices beyond the 2730 of the file
        (16, "<I", 0),  # no slices
        (20, "<I", 0),  # total slices
        (24, "<I", 0),  # n_fft
        (24, "<I", 1),
        (24, "<I", 2**21),
        (32, "<d", 0.0),  # fs
        (32, "<d", -2.0e6),
        (32, "<d", math.nan),
        (40, "<d", math.inf),  # f_LO
        (48, "<d", math.nan),  # DAQ time
    ],
)
def test_raw_chunk_with_bad_header_fields_is_rejected(offset: int, fmt: str, value: float) -> None:
    data = _patched(_raw_chunk().to_bytes(), offset, struct.pack(fmt, value))
    with pytest.raises(MessageDecodeError):
        RawChunk.from_bytes(data)


# --- property-based ------------------------------------------------------------------------

run_ids = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40)
positive = st.floats(min_value=0.0, exclude_min=True, allow_infinity=False, allow_nan=False)
finite = st.floats(allow_infinity=False, allow_nan=False)
u32 = st.integers(0, MAX_U32)


@st.composite
def raw_chunks(draw: st.DrawFn) -> RawChunk:
    n_fft = draw(st.integers(2, 64))
    count = draw(st.integers(1, 4))
    first = draw(st.integers(0, MAX_U32 - count))
    samples = draw(st.binary(min_size=8 * count * n_fft, max_size=8 * count * n_fft))
    iq = np.frombuffer(samples, "<f4").reshape(2, count, n_fft)  # any bit pattern
    return RawChunk(
        run_id=draw(run_ids),
        file_number=draw(u32),
        first_slice=first,
        total_slices=draw(st.integers(first + count, MAX_U32)),
        n_fft=n_fft,
        fs=draw(positive),
        f_lo=draw(finite),
        daq_time=draw(finite),
        i=iq[0],
        q=iq[1],
    )


@st.composite
def partials(draw: st.DrawFn) -> Partial:
    n_fft = draw(st.integers(2, 64))
    total = draw(st.integers(1, MAX_U32))
    mean = draw(arrays(np.float64, n_fft, elements=finite))
    m2 = draw(arrays(np.float64, n_fft, elements=st.floats(min_value=0.0, allow_infinity=False)))
    return Partial(
        run_id=draw(run_ids),
        file_number=draw(u32),
        chunk_id=draw(st.integers(0, total - 1)),
        total_slices=total,
        n_fft=n_fft,
        fs=draw(positive),
        f_lo=draw(finite),
        daq_time=draw(finite),
        moments=Moments(np.int64(draw(st.integers(1, total))), mean, m2),
    )


messages = st.one_of(raw_chunks(), partials())


@settings(max_examples=150, deadline=None)
@given(raw_chunks())
def test_any_raw_chunk_round_trips(chunk: RawChunk) -> None:
    _assert_same_chunk(RawChunk.from_bytes(chunk.to_bytes()), chunk)


@settings(max_examples=150, deadline=None)
@given(partials())
def test_any_partial_round_trips(partial: Partial) -> None:
    _assert_same_partial(Partial.from_bytes(partial.to_bytes()), partial)


@settings(max_examples=100, deadline=None)
@given(messages, st.data())
def test_any_truncated_message_is_rejected(
    message: RawChunk | Partial, data: st.DataObject
) -> None:
    encoded = message.to_bytes()
    cut = data.draw(st.integers(0, len(encoded) - 1), label="cut")
    with pytest.raises(MessageDecodeError):
        type(message).from_bytes(encoded[:cut])


@settings(max_examples=100, deadline=None)
@given(messages, st.binary(min_size=1, max_size=64))
def test_any_message_with_trailing_bytes_is_rejected(
    message: RawChunk | Partial, extra: bytes
) -> None:
    with pytest.raises(MessageDecodeError):
        type(message).from_bytes(message.to_bytes() + extra)


@settings(max_examples=100, deadline=None)
@given(messages, st.integers(0, 255).filter(lambda v: v != 1))
def test_any_other_version_is_rejected(message: RawChunk | Partial, version: int) -> None:
    encoded = message.to_bytes()
    assert encoded[4] == 1
    with pytest.raises(MessageDecodeError, match="version"):
        type(message).from_bytes(_patched(encoded, 4, bytes([version])))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([RawChunk, Partial]), st.binary(max_size=600))
def test_random_bytes_are_rejected(cls: MessageType, data: bytes) -> None:
    with pytest.raises(MessageDecodeError):
        cls.from_bytes(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([RawChunk, Partial]), st.binary(max_size=600))
def test_random_bytes_behind_a_valid_magic_and_version_are_rejected(
    cls: MessageType, tail: bytes
) -> None:
    with pytest.raises(MessageDecodeError):
        cls.from_bytes(cls.MAGIC + bytes([cls.VERSION]) + tail)


def _ignored_positions(message: RawChunk | Partial) -> set[int]:
    """Bytes the decoder does not read: the reserved fields and the run id's padding."""
    length = len(message.run_id.encode())
    ignored = {5} | set(range(HEADER + length, HEADER + _pad8(length)))
    if isinstance(message, RawChunk):
        ignored |= set(range(28, 32))
    return ignored


@settings(max_examples=300, deadline=None)
@given(messages, st.data())
def test_a_corrupted_byte_is_rejected_or_decoded_faithfully(
    message: RawChunk | Partial, data: st.DataObject
) -> None:
    """Changing one byte either fails cleanly or yields a message that says exactly that byte."""
    encoded = message.to_bytes()
    end = min(len(encoded), HEADER + 16 + _pad8(len(message.run_id.encode())))
    position = data.draw(st.integers(0, end - 1), label="position")
    value = data.draw(st.integers(0, 255).filter(lambda v: v != encoded[position]), label="value")
    corrupted = _patched(encoded, position, bytes([value]))
    try:
        decoded = type(message).from_bytes(corrupted)
    except MessageDecodeError:
        return
    again = decoded.to_bytes()
    assert len(again) == len(corrupted)
    differing = {k for k in range(len(again)) if again[k] != corrupted[k]}
    assert differing <= _ignored_positions(decoded)
