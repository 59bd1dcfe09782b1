"""Versioned binary Kafka messages: raw I/Q chunks, partial spectrum statistics, and the two
control messages on the partials topic (a skipped chunk, a request to close a file).

All share one layout: a fixed little-endian header (magic, version, fields), the run id
in UTF-8 padded to 8 bytes, then the arrays as raw little-endian bytes (never pickle,
base64 or JSON for samples). Decoding checks everything it can and raises
:class:`MessageDecodeError` with the reason; arrays are zero-copy views of the message.

RawChunk v1 header (56 bytes):  magic "QXRC", u8 version, u8 reserved, u16 run-id length,
    u32 file number, u32 first slice, u32 slice count, u32 total slices of the file,
    u32 n_fft, 4 reserved, f64 fs (Hz), f64 f_LO (Hz), f64 DAQ file time (Unix s);
    then run id, then I block and Q block (slice count · n_fft float32 each).
Partial v1 header (56 bytes):  magic "QXPT", u8 version, u8 reserved, u16 run-id length,
    u32 file number, u32 chunk id (its first slice), u32 total slices, u32 n_fft,
    f64 fs, f64 f_LO, f64 DAQ file time, i64 n;
    then run id, then mean and M2 (n_fft float64 each, PSD in V²/Hz and (V²/Hz)²).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

import numpy as np
from numpy.typing import NDArray

from quaxspec.moments import Moments

__all__ = [
    "MAX_N_FFT",
    "CloseFile",
    "MessageDecodeError",
    "Partial",
    "RawChunk",
    "SkippedChunk",
    "decode_partials_topic",
]

#: Largest FFT length a message may declare (guards against absurd allocations).
MAX_N_FFT = 1 << 20
_MAX_RUN_ID = 255
_F4 = np.dtype("<f4")
_F8 = np.dtype("<f8")


class MessageDecodeError(ValueError):
    """Bytes that are not a valid message of the expected type and version."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Origin:
    """Which run, file and slices a message is about, and the file's acquisition settings."""

    run_id: str
    file_number: int
    total_slices: int
    n_fft: int
    fs: float
    f_lo: float
    daq_time: float

    def _check(self) -> None:
        if not self.run_id or len(self.run_id.encode()) > _MAX_RUN_ID:
            raise ValueError(f"run id must be 1–{_MAX_RUN_ID} UTF-8 bytes, got {self.run_id!r}")
        if not 0 <= self.file_number < 2**32:
            raise ValueError(f"file number {self.file_number} outside 0 … 2³²−1")
        if not 2 <= self.n_fft <= MAX_N_FFT:
            raise ValueError(f"n_fft {self.n_fft} outside 2 … {MAX_N_FFT}")
        if not 1 <= self.total_slices < 2**32:
            raise ValueError(f"total slices {self.total_slices} outside 1 … 2³²−1")
        if not (math.isfinite(self.fs) and self.fs > 0):
            raise ValueError(f"fs must be positive and finite, got {self.fs}")
        if not (math.isfinite(self.f_lo) and math.isfinite(self.daq_time)):
            raise ValueError("f_LO and DAQ time must be finite")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class RawChunk(_Origin):
    """Consecutive slices of one DAQ file: the unit the producer sends and a worker transforms."""

    MAGIC: ClassVar[bytes] = b"QXRC"
    VERSION: ClassVar[int] = 1
    _HEADER: ClassVar[struct.Struct] = struct.Struct("<4sBxHIIIII4xddd")
    #: Bytes of the fixed header (before the run id).
    HEADER_BYTES: ClassVar[int] = _HEADER.size

    first_slice: int
    #: I and Q samples, (slice count, n_fft) float32 each.
    i: NDArray[np.float32]
    q: NDArray[np.float32]

    def __post_init__(self) -> None:
        self._check()
        if self.i.shape != self.q.shape or self.i.ndim != 2 or self.i.shape[1] != self.n_fft:
            raise ValueError(
                f"I {self.i.shape} and Q {self.q.shape} must be (slices, {self.n_fft})"
            )
        if not (self.first_slice >= 0 and self.first_slice + self.n_slices <= self.total_slices):
            raise ValueError(
                f"slices {self.first_slice}+{self.n_slices} exceed the file's {self.total_slices}"
            )

    @property
    def n_slices(self) -> int:
        """Slices in this chunk."""
        return int(self.i.shape[0])

    def to_bytes(self) -> bytes:
        """Encode (one copy of the samples)."""
        run = _padded(self.run_id)
        header = self._HEADER.pack(
            self.MAGIC, self.VERSION, len(self.run_id.encode()), self.file_number,
            self.first_slice, self.n_slices, self.total_slices, self.n_fft,
            self.fs, self.f_lo, self.daq_time,
        )  # fmt: skip
        return b"".join(
            (header, run, np.asarray(self.i, _F4).tobytes(), np.asarray(self.q, _F4).tobytes())
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode and validate; the I and Q arrays are views of ``data`` (read-only for bytes)."""
        fields, offset = _unpack_header(cls._HEADER, cls.MAGIC, cls.VERSION, data, "raw chunk")
        _, _, run_len, file_number, first, count, total, n_fft, fs, f_lo, daq_time = fields
        run_id, offset = _read_run_id(data, offset, run_len)
        if not 1 <= n_fft <= MAX_N_FFT or count < 1:
            raise MessageDecodeError(f"raw chunk declares {count} slices of n_fft {n_fft}")
        block = count * n_fft
        _expect_length(data, offset + 2 * block * _F4.itemsize, "raw chunk")
        i = np.frombuffer(data, _F4, block, offset).reshape(count, n_fft)
        q = np.frombuffer(data, _F4, block, offset + block * _F4.itemsize).reshape(count, n_fft)
        return _build(
            cls, run_id=run_id, file_number=file_number, first_slice=first, total_slices=total,
            n_fft=n_fft, fs=fs, f_lo=f_lo, daq_time=daq_time, i=i, q=q,
        )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Partial(_Origin):
    """The spectrum statistics of one chunk: what a worker sends and the aggregator merges."""

    MAGIC: ClassVar[bytes] = b"QXPT"
    VERSION: ClassVar[int] = 1
    _HEADER: ClassVar[struct.Struct] = struct.Struct("<4sBxHIIIIdddq")
    #: Bytes of the fixed header (before the run id).
    HEADER_BYTES: ClassVar[int] = _HEADER.size

    #: Identifies the chunk within its file (its first slice): the aggregator's dedup key.
    chunk_id: int
    moments: Moments

    @classmethod
    def of_chunk(cls, chunk: RawChunk, moments: Moments) -> Self:
        """The partial that carries the statistics of ``chunk``."""
        return cls(
            run_id=chunk.run_id, file_number=chunk.file_number, chunk_id=chunk.first_slice,
            total_slices=chunk.total_slices, n_fft=chunk.n_fft, fs=chunk.fs, f_lo=chunk.f_lo,
            daq_time=chunk.daq_time, moments=moments,
        )  # fmt: skip

    def __post_init__(self) -> None:
        self._check()
        if self.moments.n_bins != self.n_fft:
            raise ValueError(f"moments have {self.moments.n_bins} bins, not n_fft {self.n_fft}")
        if not 1 <= self.moments.n <= self.total_slices:
            raise ValueError(f"count {self.moments.n} outside 1 … {self.total_slices}")
        m = self.moments
        if not (np.isfinite(m.mean).all() and np.isfinite(m.m2).all() and (m.m2 >= 0).all()):
            raise ValueError("means must be finite and M2 finite and non-negative")
        if not 0 <= self.chunk_id < self.total_slices:
            raise ValueError(f"chunk id {self.chunk_id} outside 0 … {self.total_slices - 1}")

    def to_bytes(self) -> bytes:
        """Encode."""
        header = self._HEADER.pack(
            self.MAGIC, self.VERSION, len(self.run_id.encode()), self.file_number,
            self.chunk_id, self.total_slices, self.n_fft, self.fs, self.f_lo, self.daq_time,
            int(self.moments.n),
        )  # fmt: skip
        return b"".join(
            (
                header,
                _padded(self.run_id),
                np.asarray(self.moments.mean, _F8).tobytes(),
                np.asarray(self.moments.m2, _F8).tobytes(),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode and validate (means must be finite, M2 finite and non-negative, n ≥ 1)."""
        fields, offset = _unpack_header(cls._HEADER, cls.MAGIC, cls.VERSION, data, "partial")
        _, _, run_len, file_number, chunk_id, total, n_fft, fs, f_lo, daq_time, n = fields
        run_id, offset = _read_run_id(data, offset, run_len)
        if not 1 <= n_fft <= MAX_N_FFT:
            raise MessageDecodeError(f"partial declares n_fft {n_fft}")
        _expect_length(data, offset + 2 * n_fft * _F8.itemsize, "partial")
        mean = np.frombuffer(data, _F8, n_fft, offset).astype(np.float64)
        m2 = np.frombuffer(data, _F8, n_fft, offset + n_fft * _F8.itemsize).astype(np.float64)
        if n < 1:
            raise MessageDecodeError(f"partial declares count {n}")
        return _build(
            cls, run_id=run_id, file_number=file_number, chunk_id=chunk_id, total_slices=total,
            n_fft=n_fft, fs=fs, f_lo=f_lo, daq_time=daq_time,
            moments=Moments(np.int64(n), mean, m2),
        )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SkippedChunk(_Origin):
    """A chunk a worker could not use (non-finite samples): its slices will never arrive.

    Sent on the partials topic so that the aggregator can finish the file at once,
    flagged incomplete, instead of waiting for the file timeout.
    """

    MAGIC: ClassVar[bytes] = b"QXSK"
    VERSION: ClassVar[int] = 1
    _HEADER: ClassVar[struct.Struct] = struct.Struct("<4sBxHIIIII4xddd")

    chunk_id: int
    n_slices: int

    @classmethod
    def of_chunk(cls, chunk: RawChunk) -> Self:
        """The notice that ``chunk`` was rejected."""
        return cls(
            run_id=chunk.run_id, file_number=chunk.file_number, chunk_id=chunk.first_slice,
            n_slices=chunk.n_slices, total_slices=chunk.total_slices, n_fft=chunk.n_fft,
            fs=chunk.fs, f_lo=chunk.f_lo, daq_time=chunk.daq_time,
        )  # fmt: skip

    def __post_init__(self) -> None:
        self._check()
        if self.chunk_id < 0 or not 1 <= self.n_slices <= self.total_slices - self.chunk_id:
            raise ValueError(
                f"slices {self.chunk_id}+{self.n_slices} exceed the file's {self.total_slices}"
            )

    def to_bytes(self) -> bytes:
        """Encode."""
        header = self._HEADER.pack(
            self.MAGIC, self.VERSION, len(self.run_id.encode()), self.file_number,
            self.chunk_id, self.n_slices, self.total_slices, self.n_fft,
            self.fs, self.f_lo, self.daq_time,
        )  # fmt: skip
        return header + _padded(self.run_id)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode and validate."""
        fields, offset = _unpack_header(cls._HEADER, cls.MAGIC, cls.VERSION, data, "skip")
        _, _, run_len, file_number, chunk_id, count, total, n_fft, fs, f_lo, daq_time = fields
        run_id, end = _read_run_id(data, offset, run_len)
        _expect_length(data, end, "skip")
        return _build(
            cls, run_id=run_id, file_number=file_number, chunk_id=chunk_id, n_slices=count,
            total_slices=total, n_fft=n_fft, fs=fs, f_lo=f_lo, daq_time=daq_time,
        )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseFile:
    """A request to close a file that has stopped receiving chunks (sent on the partials topic).

    The aggregator's timer sends it, keyed by run, so that the close is applied in the
    same partition, and the same order, as the file's partials.
    """

    MAGIC: ClassVar[bytes] = b"QXCF"
    VERSION: ClassVar[int] = 1
    _HEADER: ClassVar[struct.Struct] = struct.Struct("<4sBxHI")

    run_id: str
    file_number: int

    def __post_init__(self) -> None:
        if not self.run_id or len(self.run_id.encode()) > _MAX_RUN_ID:
            raise ValueError(f"run id must be 1–{_MAX_RUN_ID} UTF-8 bytes, got {self.run_id!r}")
        if not 0 <= self.file_number < 2**32:
            raise ValueError(f"file number {self.file_number} outside 0 … 2³²−1")

    def to_bytes(self) -> bytes:
        """Encode."""
        run = self.run_id.encode()
        header = self._HEADER.pack(self.MAGIC, self.VERSION, len(run), self.file_number)
        return header + _padded(self.run_id)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode and validate."""
        fields, offset = _unpack_header(cls._HEADER, cls.MAGIC, cls.VERSION, data, "close")
        run_id, end = _read_run_id(data, offset, fields[2])
        _expect_length(data, end, "close")
        return _build(cls, run_id=run_id, file_number=fields[3])


def decode_partials_topic(data: bytes) -> Partial | SkippedChunk | CloseFile:
    """Decode a message of the partials topic: partials, skipped chunks and close requests."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MessageDecodeError(f"expected bytes, got {type(data).__name__}")
    magic = bytes(data[:4])
    if magic == CloseFile.MAGIC:
        return CloseFile.from_bytes(data)
    if magic == SkippedChunk.MAGIC:
        return SkippedChunk.from_bytes(data)
    return Partial.from_bytes(data)


def _padded(run_id: str) -> bytes:
    raw = run_id.encode()
    return raw + b"\0" * (-len(raw) % 8)


def _unpack_header(
    header: struct.Struct, magic: bytes, version: int, data: bytes, kind: str
) -> tuple[tuple[Any, ...], int]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MessageDecodeError(f"{kind}: expected bytes, got {type(data).__name__}")
    if len(data) < header.size:
        raise MessageDecodeError(f"{kind}: {len(data)} bytes is shorter than its header")
    fields = header.unpack_from(data)
    if fields[0] != magic:
        raise MessageDecodeError(f"not a {kind}: magic {fields[0]!r}, expected {magic!r}")
    if fields[1] != version:
        raise MessageDecodeError(
            f"{kind}: unsupported version {fields[1]} (this build reads {version})"
        )
    return fields, header.size


def _read_run_id(data: bytes, offset: int, length: int) -> tuple[str, int]:
    end = offset + length + (-length % 8)
    if length < 1 or len(data) < end:
        raise MessageDecodeError(f"run id of {length} bytes does not fit the message")
    try:
        run_id = bytes(data[offset : offset + length]).decode()
    except UnicodeDecodeError as error:
        raise MessageDecodeError(f"run id is not UTF-8: {error}") from None
    return run_id, end


def _expect_length(data: bytes, expected: int, kind: str) -> None:
    if len(data) != expected:
        raise MessageDecodeError(
            f"{kind}: {len(data)} bytes, its header declares {expected} "
            f"({'truncated' if len(data) < expected else 'trailing bytes'})"
        )


_T = TypeVar("_T")


def _build(cls: type[_T], **fields: object) -> _T:
    """Construct a decoded message, turning a failed invariant into a decode error."""
    try:
        return cls(**fields)
    except (ValueError, TypeError) as error:
        raise MessageDecodeError(f"{cls.__name__}: {error}") from None
