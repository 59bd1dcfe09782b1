"""Idempotent per-file and per-run accumulators, as the aggregator keeps them in its tables.

Kafka delivers at least once: after a crash, partials are delivered again. A file
accumulator remembers which chunks it has applied, and a run accumulator which files it
has merged (as ranges of file numbers, so a weeks-long run stays small), so that every
slice is counted exactly once however often it arrives.

Both serialise to bytes for the table store: a fixed header, the run id, then arrays.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import ClassVar, Self

import numpy as np

from quaxspec.messages import MessageDecodeError, Partial, SkippedChunk
from quaxspec.moments import Moments
from quaxspec.ranges import FileRanges

__all__ = ["FileAccumulator", "RunAccumulator"]

_F8 = np.dtype("<f8")
_U4 = np.dtype("<u4")
_I8 = np.dtype("<i8")


@dataclass(slots=True, kw_only=True)
class FileAccumulator:
    """The statistics of one DAQ file gathered so far, and which chunks they contain."""

    _HEADER: ClassVar[struct.Struct] = struct.Struct("<4sBxHIIIqdddd")
    _MAGIC: ClassVar[bytes] = b"QXFA"

    run_id: str
    file_number: int
    total_slices: int
    n_fft: int
    fs: float
    f_lo: float
    #: When the DAQ finished the file: the latest DAQ time of its chunks.
    daq_time: float
    moments: Moments
    #: Chunks accounted for: applied, or skipped by a worker.
    chunks: set[int] = field(default_factory=set)
    #: Slices of skipped chunks (they will never arrive).
    skipped: int = 0
    duplicates: int = 0
    #: Wall-clock time of the last new chunk (for closing stalled files).
    updated: float = 0.0

    @classmethod
    def open(cls, first: Partial | SkippedChunk, *, now: float) -> Self:
        """An empty accumulator for the file that ``first`` belongs to."""
        return cls(
            run_id=first.run_id,
            file_number=first.file_number,
            total_slices=first.total_slices,
            n_fft=first.n_fft,
            fs=first.fs,
            f_lo=first.f_lo,
            daq_time=first.daq_time,
            moments=Moments.empty(first.n_fft),
            updated=now,
        )

    def apply(self, message: Partial | SkippedChunk, *, now: float) -> bool:
        """Account for a chunk (merge a partial, or count a skip) unless already in.

        Returns whether the chunk was new. A message that contradicts the file (other
        n_fft, fs or slice count, or more slices than the file has) is a ValueError.
        """
        if (message.run_id, message.file_number) != (self.run_id, self.file_number):
            raise ValueError("chunk belongs to another file")
        if (message.n_fft, message.total_slices, message.fs) != (
            self.n_fft,
            self.total_slices,
            self.fs,
        ):
            raise ValueError(
                f"chunk of file {self.file_number} says n_fft {message.n_fft}, "
                f"{message.total_slices} slices, fs {message.fs}; the file has {self.n_fft}, "
                f"{self.total_slices}, {self.fs}"
            )
        if message.chunk_id in self.chunks:
            self.duplicates += 1
            return False
        slices = message.n_slices if isinstance(message, SkippedChunk) else int(message.moments.n)
        if self.accounted + slices > self.total_slices:
            raise ValueError(
                f"chunk {message.chunk_id} would take file {self.file_number} past its "
                f"{self.total_slices} slices"
            )
        if isinstance(message, SkippedChunk):
            self.skipped += slices
        else:
            self.moments = self.moments.merge(message.moments)
        self.chunks.add(message.chunk_id)
        # A file sent while the DAQ wrote it has chunks read at different times; the last
        # one was read after the DAQ's last write, so the latest time is the file's.
        self.daq_time = max(self.daq_time, message.daq_time)
        self.updated = now
        return True

    @property
    def accounted(self) -> int:
        """Slices merged or skipped so far."""
        return int(self.moments.n) + self.skipped

    @property
    def finished(self) -> bool:
        """Whether every slice of the file is accounted for (merged or skipped)."""
        return self.accounted == self.total_slices

    @property
    def complete(self) -> bool:
        """Whether every slice of the file is in its statistics."""
        return int(self.moments.n) == self.total_slices

    def to_bytes(self) -> bytes:
        """Encode for the table store."""
        run = self.run_id.encode()
        header = self._HEADER.pack(
            self._MAGIC, 1, len(run), self.file_number, self.total_slices, self.n_fft,
            int(self.moments.n), self.fs, self.f_lo, self.daq_time, self.updated,
        )  # fmt: skip
        counts = struct.pack("<III", len(self.chunks), self.duplicates, self.skipped)
        return b"".join(
            (
                header,
                run,
                counts,
                np.array(sorted(self.chunks), dtype=_U4).tobytes(),
                self.moments.mean.astype(_F8).tobytes(),
                self.moments.m2.astype(_F8).tobytes(),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode what :meth:`to_bytes` wrote."""
        try:
            fields = cls._HEADER.unpack_from(data)
            magic, version, run_len, number, total, n_fft, n, fs, f_lo, daq_time, updated = fields
            _check_header("file accumulator", magic, cls._MAGIC, version, n_fft)
            offset = cls._HEADER.size
            run_id = bytes(data[offset : offset + run_len]).decode()
            offset += run_len
            n_chunks, duplicates, skipped = struct.unpack_from("<III", data, offset)
            offset += 12
            chunks = np.frombuffer(data, _U4, n_chunks, offset)
            offset += n_chunks * _U4.itemsize
            mean = np.frombuffer(data, _F8, n_fft, offset).copy()
            m2 = np.frombuffer(data, _F8, n_fft, offset + n_fft * _F8.itemsize).copy()
            _check_length("file accumulator", data, offset + 2 * n_fft * _F8.itemsize)
        except (struct.error, ValueError) as error:
            raise MessageDecodeError(f"file accumulator: {error}") from None
        return cls(
            run_id=run_id, file_number=number, total_slices=total, n_fft=n_fft, fs=fs,
            f_lo=f_lo, daq_time=daq_time, moments=Moments(np.int64(n), mean, m2),
            chunks={int(c) for c in chunks}, skipped=skipped, duplicates=duplicates,
            updated=updated,
        )  # fmt: skip


@dataclass(slots=True, kw_only=True)
class RunAccumulator:
    """The cumulative statistics of a run: every merged file counted once."""

    _HEADER: ClassVar[struct.Struct] = struct.Struct("<4sBxHIqqqqdddd")
    _MAGIC: ClassVar[bytes] = b"QXRA"

    run_id: str
    n_fft: int
    fs: float
    f_lo: float
    moments: Moments
    files: FileRanges = field(default_factory=FileRanges)
    incomplete_files: int = 0
    duplicates: int = 0
    first_daq_time: float = math.inf
    last_daq_time: float = -math.inf
    last_file: int = -1

    @classmethod
    def start(cls, file: FileAccumulator) -> Self:
        """An empty run with the acquisition settings of its first file."""
        return cls(
            run_id=file.run_id,
            n_fft=file.n_fft,
            fs=file.fs,
            f_lo=file.f_lo,
            moments=Moments.empty(file.n_fft),
        )

    def merge_file(self, file: FileAccumulator) -> bool:
        """Merge a closed file (complete or not) unless already merged; return whether new."""
        if file.run_id != self.run_id:
            raise ValueError("file belongs to another run")
        if (file.n_fft, file.fs) != (self.n_fft, self.fs):
            raise ValueError(
                f"file {file.file_number} has n_fft {file.n_fft}, fs {file.fs}; "
                f"run {self.run_id} has {self.n_fft}, {self.fs}"
            )
        if file.file_number in self.files:
            return False
        self.moments = self.moments.merge(file.moments)
        self.files.add(file.file_number)
        self.incomplete_files += 0 if file.complete else 1
        self.duplicates += file.duplicates
        self.first_daq_time = min(self.first_daq_time, file.daq_time)
        self.last_daq_time = max(self.last_daq_time, file.daq_time)
        self.last_file = max(self.last_file, file.file_number)
        return True

    def to_bytes(self) -> bytes:
        """Encode for the table store."""
        run = self.run_id.encode()
        header = self._HEADER.pack(
            self._MAGIC, 1, len(run), self.n_fft, int(self.moments.n), self.incomplete_files,
            self.duplicates, self.last_file, self.fs, self.f_lo, self.first_daq_time,
            self.last_daq_time,
        )  # fmt: skip
        ranges = np.array([self.files.starts, self.files.stops], dtype=_I8)
        return b"".join(
            (
                header,
                run,
                struct.pack("<I", len(self.files.starts)),
                ranges.tobytes(),
                self.moments.mean.astype(_F8).tobytes(),
                self.moments.m2.astype(_F8).tobytes(),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode what :meth:`to_bytes` wrote."""
        try:
            fields = cls._HEADER.unpack_from(data)
            magic, version, run_len, n_fft, n, incomplete, duplicates, last_file = fields[:8]
            fs, f_lo, first_time, last_time = fields[8:]
            _check_header("run accumulator", magic, cls._MAGIC, version, n_fft)
            offset = cls._HEADER.size
            run_id = bytes(data[offset : offset + run_len]).decode()
            offset += run_len
            (n_ranges,) = struct.unpack_from("<I", data, offset)
            offset += 4
            ranges = np.frombuffer(data, _I8, 2 * n_ranges, offset).reshape(2, n_ranges)
            offset += ranges.nbytes
            mean = np.frombuffer(data, _F8, n_fft, offset).copy()
            m2 = np.frombuffer(data, _F8, n_fft, offset + n_fft * _F8.itemsize).copy()
            _check_length("run accumulator", data, offset + 2 * n_fft * _F8.itemsize)
        except (struct.error, ValueError) as error:
            raise MessageDecodeError(f"run accumulator: {error}") from None
        return cls(
            run_id=run_id, n_fft=n_fft, fs=fs, f_lo=f_lo,
            moments=Moments(np.int64(n), mean, m2),
            files=FileRanges([int(s) for s in ranges[0]], [int(s) for s in ranges[1]]),
            incomplete_files=incomplete, duplicates=duplicates, first_daq_time=first_time,
            last_daq_time=last_time, last_file=last_file,
        )  # fmt: skip


def _check_header(kind: str, magic: bytes, expected: bytes, version: int, n_fft: int) -> None:
    if magic != expected:
        raise MessageDecodeError(f"not a {kind}: magic {magic!r}")
    if version != 1:
        raise MessageDecodeError(f"{kind}: unsupported version {version} (this build reads 1)")
    if n_fft < 2:
        raise MessageDecodeError(f"{kind}: n_fft {n_fft}")


def _check_length(kind: str, data: bytes, expected: int) -> None:
    if len(data) != expected:
        raise MessageDecodeError(f"{kind}: {len(data)} bytes where {expected} were expected")
