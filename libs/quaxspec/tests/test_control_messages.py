"""Tests for SkippedChunk, CloseFile and decode_partials_topic in quaxspec.messages."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quaxspec.messages import (
    CloseFile,
    MessageDecodeError,
    Partial,
    RawChunk,
    SkippedChunk,
    decode_partials_topic,
)
from quaxspec.moments import Moments

SKIP_HEADER = 56
CLOSE_HEADER = 12
MAX_U32 = 2**32 - 1


def _pad8(n: int) -> int:
    return n + (-n % 8)


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _patched(data: bytes, offset: int, raw: bytes) -> bytes:
    return data[:offset] + raw + data[offset + len(raw) :]


def _skip(**overrides: Any) -> SkippedChunk:
    fields: dict[str, Any] = {
        "run_id": "run-2024-06-01",
        "file_number": 123456,
        "chunk_id": 40,
        "n_slices": 8,
        "total_slices": 2730,
        "n_fft": 3072,
        "fs": 2.0e6,
        "f_lo": 10.353e9,
        "daq_time": 1_717_200_000.25,
    }
    fields.update(overrides)
    return SkippedChunk(**fields)


def _partial() -> Partial:
    rng = np.random.default_rng(1)
    return Partial(
        run_id="run-2024-06-01", file_number=5, chunk_id=16, total_slices=2730, n_fft=8,
        fs=2.0e6, f_lo=0.0, daq_time=1.7e9, moments=Moments.of(rng.exponential(size=(8, 8))),
    )  # fmt: skip


def _assert_same_skip(decoded: object, expected: SkippedChunk) -> None:
    assert type(decoded) is SkippedChunk
    for name in ("run_id", "file_number", "chunk_id", "n_slices", "total_slices", "n_fft"):
        assert getattr(decoded, name) == getattr(expected, name), name
    for name in ("fs", "f_lo", "daq_time"):
        assert _bits(getattr(decoded, name)) == _bits(getattr(expected, name)), name


# --- explicit round trips and layouts ----------------------------------------------------------


@pytest.mark.parametrize(
    "run_id", ["r", "12345678", "123456789", "µ-run/é", "🛰" * 63, "é" * 127 + "a"]
)
def test_skipped_chunk_round_trip(run_id: str) -> None:
    skip = _skip(run_id=run_id, f_lo=-0.0, daq_time=-1.5)
    data = skip.to_bytes()
    assert len(data) == SKIP_HEADER + _pad8(len(run_id.encode()))
    assert data[:4] == b"QXSK"
    assert data[4] == 1
    _assert_same_skip(SkippedChunk.from_bytes(data), skip)
    for buffer in (bytearray(data), memoryview(data)):
        _assert_same_skip(SkippedChunk.from_bytes(buffer), skip)


def test_skipped_chunk_decodes_hand_built_bytes() -> None:
    header = (
        b"QXSK"
        + bytes([1, 0])
        + struct.pack("<H", 3)
        + struct.pack("<IIIII", 7, 10, 2, 12, 3)  # file, chunk id, slices, total, n_fft
        + b"\0" * 4
        + struct.pack("<ddd", 2.0e6, 1.0e10, 1.7e9)
    )
    assert len(header) == SKIP_HEADER
    data = header + b"abc" + b"\0" * 5

    skip = SkippedChunk.from_bytes(data)

    assert (skip.run_id, skip.file_number, skip.chunk_id, skip.n_slices) == ("abc", 7, 10, 2)
    assert (skip.total_slices, skip.n_fft) == (12, 3)
    assert (skip.fs, skip.f_lo, skip.daq_time) == (2.0e6, 1.0e10, 1.7e9)
    assert skip.to_bytes() == data


@pytest.mark.parametrize(
    ("run_id", "file_number"),
    [("r", 0), ("12345678", MAX_U32), ("run-2024-06-01", 17), ("µ-run/é 🛰", 99999)],
)
def test_close_file_round_trip(run_id: str, file_number: int) -> None:
    request = CloseFile(run_id=run_id, file_number=file_number)
    data = request.to_bytes()
    raw = run_id.encode()
    assert data == (
        b"QXCF" + bytes([1, 0]) + struct.pack("<HI", len(raw), file_number)
        + raw + b"\0" * (-len(raw) % 8)
    )  # fmt: skip
    assert len(data) == CLOSE_HEADER + _pad8(len(raw))
    assert CloseFile.from_bytes(data) == request
    assert CloseFile.from_bytes(memoryview(data)) == request


@pytest.mark.parametrize(
    "overrides",
    [
        {"n_slices": 0},
        {"chunk_id": -1},
        {"chunk_id": 2725, "n_slices": 6},  # past the 2730 slices of the file
        {"chunk_id": 2730, "n_slices": 1},
        {"total_slices": 0, "chunk_id": 0, "n_slices": 1},
        {"n_fft": 1},
        {"fs": math.nan},
        {"fs": 0.0},
        {"f_lo": math.inf},
        {"daq_time": math.nan},
        {"run_id": ""},
        {"run_id": "x" * 256},
        {"file_number": 2**32},
    ],
)
def test_invalid_skipped_chunk_cannot_be_built(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"slices|n_fft|fs|f_LO|run id|file number"):
        _skip(**overrides)


@pytest.mark.parametrize(
    ("run_id", "number"), [("", 1), ("r" * 256, 1), ("run", -1), ("run", 2**32)]
)
def test_close_file_with_invalid_fields_is_refused_when_built(run_id: str, number: int) -> None:
    with pytest.raises(ValueError, match=r"run id|file number"):
        CloseFile(run_id=run_id, file_number=number)


# --- malformed bytes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "fmt", "value"),
    [
        (12, "<I", 2730),  # chunk id past the file
        (16, "<I", 0),  # no slices
        (16, "<I", 2691),  # 40 + 2691 > 2730
        (20, "<I", 0),  # total slices
        (24, "<I", 0),  # n_fft
        (24, "<I", 1),
        (24, "<I", 2**21),
        (32, "<d", 0.0),  # fs
        (32, "<d", -2.0e6),
        (32, "<d", math.nan),
        (40, "<d", math.inf),  # f_LO
        (48, "<d", math.nan),  # DAQ time
        (6, "<H", 0),  # run-id length
        (6, "<H", 17),  # run id longer than the bytes that follow
    ],
)
def test_skipped_chunk_with_bad_header_fields_is_rejected(
    offset: int, fmt: str, value: float
) -> None:
    data = _patched(_skip().to_bytes(), offset, struct.pack(fmt, value))
    with pytest.raises(MessageDecodeError):
        SkippedChunk.from_bytes(data)


@pytest.mark.parametrize("cls", [SkippedChunk, CloseFile])
@pytest.mark.parametrize("bad", [b"\xff\xfe\xfd\xfc", b"ab\x80d", b"ab\xc3", b"\xc0\xafab"])
def test_run_id_that_is_not_utf8_is_rejected(cls: Any, bad: bytes) -> None:
    header = SKIP_HEADER if cls is SkippedChunk else CLOSE_HEADER
    message = (
        _skip(run_id="abcd") if cls is SkippedChunk else CloseFile(run_id="abcd", file_number=1)
    )
    data = _patched(_patched(message.to_bytes(), 6, struct.pack("<H", 4)), header, bad)
    with pytest.raises(MessageDecodeError, match="UTF-8"):
        cls.from_bytes(data)


@pytest.mark.parametrize(
    ("cls", "data"),
    [
        (SkippedChunk, lambda: CloseFile(run_id="r" * 60, file_number=1).to_bytes()),
        (CloseFile, lambda: _skip().to_bytes()),
        (SkippedChunk, lambda: _partial().to_bytes()),
        (CloseFile, lambda: _partial().to_bytes()),
        (SkippedChunk, lambda: b"QXsk" + _skip().to_bytes()[4:]),
    ],
    ids=["close-as-skip", "skip-as-close", "partial-as-skip", "partial-as-close", "lower-case"],
)
def test_wrong_magic_is_rejected(cls: Any, data: Any) -> None:
    with pytest.raises(MessageDecodeError, match="magic"):
        cls.from_bytes(data())


@pytest.mark.parametrize("cls", [SkippedChunk, CloseFile])
@pytest.mark.parametrize("value", [None, "QXSK", 12, [1, 2]])
def test_decoding_a_non_bytes_object_fails(cls: Any, value: object) -> None:
    with pytest.raises(MessageDecodeError, match="expected bytes"):
        cls.from_bytes(value)


# --- property-based ----------------------------------------------------------------------------

run_ids = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=20).filter(
    lambda s: len(s.encode()) <= 255
)
finite = st.floats(allow_infinity=False, allow_nan=False)
positive = st.floats(min_value=0.0, exclude_min=True, allow_infinity=False, allow_nan=False)


@st.composite
def skipped_chunks(draw: st.DrawFn) -> SkippedChunk:
    total = draw(st.integers(1, MAX_U32))
    chunk_id = draw(st.integers(0, total - 1))
    return SkippedChunk(
        run_id=draw(run_ids),
        file_number=draw(st.integers(0, MAX_U32)),
        chunk_id=chunk_id,
        n_slices=draw(st.integers(1, min(total - chunk_id, MAX_U32))),
        total_slices=total,
        n_fft=draw(st.integers(2, 1 << 20)),
        fs=draw(positive),
        f_lo=draw(finite),
        daq_time=draw(finite),
    )


close_requests = st.builds(CloseFile, run_id=run_ids, file_number=st.integers(0, MAX_U32))
controls = st.one_of(skipped_chunks(), close_requests)


def _same(decoded: object, message: SkippedChunk | CloseFile) -> None:
    if isinstance(message, SkippedChunk):
        _assert_same_skip(decoded, message)
    else:
        assert decoded == message


@settings(max_examples=150, deadline=None)
@given(controls)
def test_any_control_message_round_trips(message: SkippedChunk | CloseFile) -> None:
    data = message.to_bytes()
    _same(type(message).from_bytes(data), message)
    _same(decode_partials_topic(data), message)
    assert type(message).from_bytes(data).to_bytes() == data


@settings(max_examples=100, deadline=None)
@given(controls, st.data())
def test_any_truncated_control_message_is_rejected(
    message: SkippedChunk | CloseFile, data: st.DataObject
) -> None:
    encoded = message.to_bytes()
    cut = data.draw(st.integers(0, len(encoded) - 1), label="cut")
    with pytest.raises(MessageDecodeError):
        type(message).from_bytes(encoded[:cut])
    with pytest.raises(MessageDecodeError):
        decode_partials_topic(encoded[:cut])


@settings(max_examples=100, deadline=None)
@given(controls, st.binary(min_size=1, max_size=32))
def test_any_control_message_with_trailing_bytes_is_rejected(
    message: SkippedChunk | CloseFile, extra: bytes
) -> None:
    with pytest.raises(MessageDecodeError, match="trailing"):
        type(message).from_bytes(message.to_bytes() + extra)
    with pytest.raises(MessageDecodeError):
        decode_partials_topic(message.to_bytes() + extra)


@settings(max_examples=100, deadline=None)
@given(controls, st.integers(0, 255).filter(lambda v: v != 1))
def test_any_other_version_is_rejected(message: SkippedChunk | CloseFile, version: int) -> None:
    data = _patched(message.to_bytes(), 4, bytes([version]))
    with pytest.raises(MessageDecodeError, match="version"):
        type(message).from_bytes(data)
    with pytest.raises(MessageDecodeError, match="version"):
        decode_partials_topic(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100))
@pytest.mark.parametrize("decode", [SkippedChunk.from_bytes, CloseFile.from_bytes])
def test_random_bytes_are_rejected(decode: Any, data: bytes) -> None:
    with pytest.raises(MessageDecodeError):
        decode(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([b"QXSK\x01", b"QXCF\x01", b"QXPT\x01"]), st.binary(max_size=100))
def test_garbage_after_a_known_magic_raises_only_decode_errors(magic: bytes, rest: bytes) -> None:
    """Whatever follows a known magic and version: a decode error or a valid message."""
    try:
        decoded = decode_partials_topic(magic + rest)
    except MessageDecodeError:
        return
    assert magic[:4] == type(decoded).MAGIC


# --- decode_partials_topic ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["partial", "skip", "close"])
def test_partials_topic_dispatches_on_the_magic(kind: str) -> None:
    message = {
        "partial": _partial,
        "skip": _skip,
        "close": lambda: CloseFile(run_id="run-2024-06-01", file_number=77),
    }[kind]()
    data = message.to_bytes()
    for buffer in (data, bytearray(data), memoryview(data)):
        decoded = decode_partials_topic(buffer)
        assert type(decoded) is type(message)
        assert decoded.to_bytes() == data
    if isinstance(message, Partial):
        decoded = decode_partials_topic(data)
        assert isinstance(decoded, Partial)
        assert decoded.moments.mean.tobytes() == message.moments.mean.tobytes()
        assert decoded.moments.m2.tobytes() == message.moments.m2.tobytes()
        assert (decoded.chunk_id, decoded.moments.n) == (16, 8)


def _raw_chunk_bytes() -> bytes:
    zeros = np.zeros((1, 4), np.float32)
    return RawChunk(
        run_id="r", file_number=1, first_slice=0, total_slices=1, n_fft=4, fs=1.0, f_lo=0.0,
        daq_time=0.0, i=zeros, q=zeros,
    ).to_bytes()  # fmt: skip


@pytest.mark.parametrize(
    "data",
    [b"", b"QX", b"QXCF", b"QXSK", b"QXPT", b"XXXX" + b"\0" * 60, None],
    ids=["empty", "two-bytes", "close-magic", "skip-magic", "partial-magic", "unknown", "raw"],
)
def test_partials_topic_rejects_other_bytes(data: bytes | None) -> None:
    with pytest.raises(MessageDecodeError):
        decode_partials_topic(_raw_chunk_bytes() if data is None else data)


@pytest.mark.parametrize("value", [None, "QXCF"])
def test_partials_topic_rejects_a_non_bytes_value(value: object) -> None:
    with pytest.raises(MessageDecodeError):
        decode_partials_topic(value)  # type: ignore[arg-type]


def test_partial_and_skip_notice_carry_their_chunks_origin() -> None:
    rng = np.random.default_rng(7)
    i, q = (rng.standard_normal((3, 8)).astype(np.float32) for _ in range(2))
    chunk = RawChunk(
        run_id="run-x", file_number=12, first_slice=6, total_slices=20, n_fft=8,
        fs=1e6, f_lo=9.5e9, daq_time=1.8e9, i=i, q=q,
    )  # fmt: skip
    moments = Moments.of(rng.exponential(1.0, (3, 8)))
    partial = Partial.of_chunk(chunk, moments)
    notice = SkippedChunk.of_chunk(chunk)
    for message in (partial, notice):
        assert (message.run_id, message.file_number, message.chunk_id) == ("run-x", 12, 6)
        assert (message.total_slices, message.n_fft) == (20, 8)
        assert (message.fs, message.f_lo, message.daq_time) == (1e6, 9.5e9, 1.8e9)
    assert partial.moments is moments
    assert notice.n_slices == 3
