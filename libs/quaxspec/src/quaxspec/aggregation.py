"""Idempotent per-file and per-run accumulators, as the aggregator keeps them in its tables.

Kafka delivers at least once: after a crash, partials are delivered again. A file
accumulator remembers which slices it holds and a run accumulator which files it has
merged (both as ranges, so a weeks-long run stays small), so that every slice is counted
exactly once however often it arrives, and a chunk that overlaps slices already counted
is refused.

Data can also come late: a file closed incomplete after its chunks stopped coming is kept
(closed, but not forgotten) so that chunks arriving afterwards still merge into it and
into its run, exactly once. The run lists the files it keeps that way, oldest first, and
forgets the oldest beyond a bound.

Both serialise to bytes for the table store: a fixed header, the run id, then arrays;
:func:`file_spectrum` and :func:`run_spectrum` turn them into the output messages.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Self

import numpy as np

from quaxspec.findings import AnalysisConfig, Candidate, SpectrumAnalysis
from quaxspec.limits import MAX_LISTED_CANDIDATES
from quaxspec.messages import MessageDecodeError, Partial, SkippedChunk
from quaxspec.moments import Moments
from quaxspec.ranges import Ranges
from quaxspec.spectra import FileSpectrum, RunSpectrum

__all__ = ["FileAccumulator", "RunAccumulator", "file_spectrum", "run_spectrum"]

_F8 = np.dtype("<f8")
_U4 = np.dtype("<u4")
_I8 = np.dtype("<i8")


@dataclass(slots=True, kw_only=True)
class FileAccumulator:
    """The statistics of one DAQ file gathered so far, and which chunks they contain."""

    _HEADER: ClassVar[struct.Struct] = struct.Struct("<4sBxHIIIqddddIIIIB")
    _MAGIC: ClassVar[bytes] = b"QXFA"
    _VERSION: ClassVar[int] = 2

    run_id: str
    file_number: int
    total_slices: int
    n_fft: int
    fs: float
    f_lo: float
    #: When the DAQ finished the file: the latest DAQ time of its chunks.
    daq_time: float
    moments: Moments
    #: Slices accounted for: merged, or skipped by a worker.
    slices: Ranges = field(default_factory=Ranges)
    #: Slices of skipped chunks (they will never arrive).
    skipped: int = 0
    duplicates: int = 0
    #: Chunks merged after the file was closed.
    late: int = 0
    #: Times the file's spectrum was emitted; the next emission is revision ``revision``.
    revision: int = 0
    #: Whether the file was closed (emitted and merged into its run) before it finished.
    closed: bool = False
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

        Returns whether the chunk was new; a chunk whose slices are all counted already is
        a duplicate. A chunk that contradicts the file (other n_fft, fs or slice count), or
        that overlaps slices already counted without repeating them, is a ValueError.
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
        first, count = message.chunk_id, _slices(message)
        stop = first + count
        if stop > self.total_slices:
            raise ValueError(
                f"chunk of slices {first}–{stop - 1} goes past file {self.file_number}'s "
                f"{self.total_slices} slices"
            )
        if self.slices.covers(first, stop):
            self.duplicates += 1
            return False
        if self.slices.overlaps(first, stop):
            raise ValueError(
                f"chunk of slices {first}–{stop - 1} overlaps slices file {self.file_number} "
                f"already has ({_describe(self.slices)}); it is neither new nor a repeat"
            )
        if isinstance(message, SkippedChunk):
            self.skipped += count
        else:
            self.moments = self.moments.merge(message.moments)
        self.slices.add_range(first, stop)
        if self.closed:
            self.late += 1
        # A file sent while the DAQ wrote it has chunks read at different times; the last
        # one was read after the DAQ's last write, so the latest time is the file's.
        self.daq_time = max(self.daq_time, message.daq_time)
        self.updated = now
        return True

    @property
    def accounted(self) -> int:
        """Slices merged or skipped so far."""
        return len(self.slices)

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
            self._MAGIC, self._VERSION, len(run), self.file_number, self.total_slices,
            self.n_fft, int(self.moments.n), self.fs, self.f_lo, self.daq_time, self.updated,
            len(self.slices.starts), self.duplicates, self.skipped, self.late, self.closed,
        )  # fmt: skip
        return b"".join(
            (
                header,
                run,
                np.array(self.slices.ranges, dtype=_U4).tobytes(),
                self.moments.mean.astype(_F8).tobytes(),
                self.moments.m2.astype(_F8).tobytes(),
                struct.pack("<I", self.revision),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode what :meth:`to_bytes` wrote."""
        try:
            fields = cls._HEADER.unpack_from(data)
            magic, version, run_len, number, total, n_fft, n, fs, f_lo = fields[:9]
            daq_time, updated, n_ranges, duplicates, skipped, late, closed = fields[9:]
            _check_header("file accumulator", magic, cls._MAGIC, version, cls._VERSION, n_fft)
            offset = cls._HEADER.size
            run_id = bytes(data[offset : offset + run_len]).decode()
            offset += run_len
            ranges = np.frombuffer(data, _U4, 2 * n_ranges, offset).reshape(n_ranges, 2)
            offset += ranges.nbytes
            mean = np.frombuffer(data, _F8, n_fft, offset).copy()
            offset += n_fft * _F8.itemsize
            m2 = np.frombuffer(data, _F8, n_fft, offset).copy()
            offset += n_fft * _F8.itemsize
            (revision,) = struct.unpack_from("<I", data, offset)
            _check_length("file accumulator", data, offset + 4)
            slices = Ranges([int(a) for a, _ in ranges], [int(b) for _, b in ranges])
        except (struct.error, ValueError) as error:
            raise MessageDecodeError(f"file accumulator: {error}") from None
        return cls(
            run_id=run_id, file_number=number, total_slices=total, n_fft=n_fft, fs=fs,
            f_lo=f_lo, daq_time=daq_time, moments=Moments(np.int64(n), mean, m2),
            slices=slices, skipped=skipped, duplicates=duplicates, late=late,
            revision=revision, closed=bool(closed), updated=updated,
        )  # fmt: skip


@dataclass(slots=True, kw_only=True)
class RunAccumulator:
    """The cumulative statistics of a run: every merged slice counted once."""

    _HEADER: ClassVar[struct.Struct] = struct.Struct("<4sBxHIqqqqqqdddd")
    _MAGIC: ClassVar[bytes] = b"QXRA"
    _VERSION: ClassVar[int] = 2

    run_id: str
    n_fft: int
    fs: float
    f_lo: float
    moments: Moments
    #: Files merged (closed), complete or not.
    files: Ranges = field(default_factory=Ranges)
    #: Merged files that still miss slices.
    incomplete: Ranges = field(default_factory=Ranges)
    #: Files closed before they finished and kept to take late chunks, oldest first.
    awaiting: list[int] = field(default_factory=list)
    duplicates: int = 0
    #: Chunks merged into files already closed.
    late_chunks: int = 0
    #: Chunks of closed files that came after the file was no longer kept: lost.
    dropped_late_chunks: int = 0
    #: Files no longer kept for late chunks (beyond the bound).
    forgotten_files: int = 0
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

    @property
    def incomplete_files(self) -> int:
        """Merged files that miss slices."""
        return len(self.incomplete)

    def merge_file(self, file: FileAccumulator) -> bool:
        """Merge a closed file (complete or not) unless already merged; return whether new."""
        self._check(file)
        if file.file_number in self.files:
            return False
        self.moments = self.moments.merge(file.moments)
        self.files.add(file.file_number)
        if not file.complete:
            self.incomplete.add(file.file_number)
        self.duplicates += file.duplicates
        self._saw(file)
        return True

    def merge_late(self, message: Partial | SkippedChunk, file: FileAccumulator) -> None:
        """Merge a late chunk that ``file`` (already merged, now with the chunk) just took."""
        self._check(file)
        if file.file_number not in self.files:
            raise ValueError(f"file {file.file_number} is not in run {self.run_id}")
        if isinstance(message, Partial):
            self.moments = self.moments.merge(message.moments)
        self.late_chunks += 1
        if file.complete:
            self.incomplete.discard(file.file_number)
        if file.finished and file.file_number in self.awaiting:
            self.awaiting.remove(file.file_number)
        self._saw(file)

    def await_late(self, file_number: int, *, keep: int) -> list[int]:
        """Keep a file closed unfinished for its late chunks; return the files forgotten.

        At most ``keep`` files are kept; the oldest closed go first.
        """
        if file_number not in self.awaiting:
            self.awaiting.append(file_number)
        forgotten = self.awaiting[: max(len(self.awaiting) - keep, 0)]
        del self.awaiting[: len(forgotten)]
        self.forgotten_files += len(forgotten)
        return forgotten

    def _check(self, file: FileAccumulator) -> None:
        if file.run_id != self.run_id:
            raise ValueError("file belongs to another run")
        if (file.n_fft, file.fs) != (self.n_fft, self.fs):
            raise ValueError(
                f"file {file.file_number} has n_fft {file.n_fft}, fs {file.fs}; "
                f"run {self.run_id} has {self.n_fft}, {self.fs}"
            )

    def _saw(self, file: FileAccumulator) -> None:
        self.first_daq_time = min(self.first_daq_time, file.daq_time)
        self.last_daq_time = max(self.last_daq_time, file.daq_time)
        self.last_file = max(self.last_file, file.file_number)

    def to_bytes(self) -> bytes:
        """Encode for the table store."""
        run = self.run_id.encode()
        header = self._HEADER.pack(
            self._MAGIC, self._VERSION, len(run), self.n_fft, int(self.moments.n),
            self.duplicates, self.last_file, self.late_chunks, self.dropped_late_chunks,
            self.forgotten_files, self.fs, self.f_lo, self.first_daq_time, self.last_daq_time,
        )  # fmt: skip
        return b"".join(
            (
                header,
                run,
                _ranges_bytes(self.files),
                _ranges_bytes(self.incomplete),
                struct.pack("<I", len(self.awaiting)),
                np.array(self.awaiting, dtype=_I8).tobytes(),
                self.moments.mean.astype(_F8).tobytes(),
                self.moments.m2.astype(_F8).tobytes(),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode what :meth:`to_bytes` wrote."""
        try:
            fields = cls._HEADER.unpack_from(data)
            magic, version, run_len, n_fft, n, duplicates, last_file, late = fields[:8]
            dropped, forgotten, fs, f_lo, first_time, last_time = fields[8:]
            _check_header("run accumulator", magic, cls._MAGIC, version, cls._VERSION, n_fft)
            offset = cls._HEADER.size
            run_id = bytes(data[offset : offset + run_len]).decode()
            offset += run_len
            files, offset = _read_ranges(data, offset)
            incomplete, offset = _read_ranges(data, offset)
            (n_awaiting,) = struct.unpack_from("<I", data, offset)
            offset += 4
            awaiting = [int(f) for f in np.frombuffer(data, _I8, n_awaiting, offset)]
            offset += n_awaiting * _I8.itemsize
            mean = np.frombuffer(data, _F8, n_fft, offset).copy()
            m2 = np.frombuffer(data, _F8, n_fft, offset + n_fft * _F8.itemsize).copy()
            _check_length("run accumulator", data, offset + 2 * n_fft * _F8.itemsize)
        except (struct.error, ValueError) as error:
            raise MessageDecodeError(f"run accumulator: {error}") from None
        return cls(
            run_id=run_id, n_fft=n_fft, fs=fs, f_lo=f_lo,
            moments=Moments(np.int64(n), mean, m2), files=files, incomplete=incomplete,
            awaiting=awaiting, duplicates=duplicates, late_chunks=late,
            dropped_late_chunks=dropped, forgotten_files=forgotten, first_daq_time=first_time,
            last_daq_time=last_time, last_file=last_file,
        )  # fmt: skip


def _slices(message: Partial | SkippedChunk) -> int:
    return message.n_slices if isinstance(message, SkippedChunk) else int(message.moments.n)


def _describe(ranges: Ranges, most: int = 4) -> str:
    shown = [f"{a}–{b - 1}" for a, b in ranges.ranges[:most]]
    more = len(ranges.starts) - most
    return ", ".join(shown) + (f" and {more} more ranges" if more > 0 else "")


def _ranges_bytes(ranges: Ranges) -> bytes:
    pairs = np.array([ranges.starts, ranges.stops], dtype=_I8)
    return struct.pack("<I", len(ranges.starts)) + pairs.tobytes()


def _read_ranges(data: bytes, offset: int) -> tuple[Ranges, int]:
    (count,) = struct.unpack_from("<I", data, offset)
    offset += 4
    pairs = np.frombuffer(data, _I8, 2 * count, offset).reshape(2, count)
    return Ranges([int(a) for a in pairs[0]], [int(b) for b in pairs[1]]), offset + pairs.nbytes


def _check_header(
    kind: str, magic: bytes, expected: bytes, version: int, supported: int, n_fft: int
) -> None:
    if magic != expected:
        raise MessageDecodeError(f"not a {kind}: magic {magic!r}")
    if version != supported:
        raise MessageDecodeError(
            f"{kind}: unsupported version {version} (this build reads {supported})"
        )
    if n_fft < 2:
        raise MessageDecodeError(f"{kind}: n_fft {n_fft}")


def _check_length(kind: str, data: bytes, expected: int) -> None:
    if len(data) != expected:
        raise MessageDecodeError(f"{kind}: {len(data)} bytes where {expected} were expected")


def file_spectrum(file: FileAccumulator, *, emitted_time: float) -> FileSpectrum:
    """The quax.spectra message of a closed file accumulator."""
    m = file.moments
    mean = m.mean if m.n else np.full(file.n_fft, np.nan)
    return FileSpectrum(
        run_id=file.run_id, file_number=file.file_number, n_fft=file.n_fft, fs=file.fs,
        f_lo=file.f_lo, count=int(m.n), expected_count=file.total_slices,
        duplicates=file.duplicates, revision=file.revision, late_chunks=file.late,
        daq_time=file.daq_time, emitted_time=emitted_time,
        mean=mean, std=m.std, spectral_kurtosis=m.spectral_kurtosis,
    )  # fmt: skip


def run_spectrum(
    run: RunAccumulator,
    analysis: SpectrumAnalysis,
    *,
    config: AnalysisConfig,
    emitted_time: float,
) -> RunSpectrum:
    """The quax.runs message of a run accumulator and the analysis of its mean spectrum."""
    return RunSpectrum(
        run_id=run.run_id, n_fft=run.n_fft, fs=run.fs, f_lo=run.f_lo, files=len(run.files),
        incomplete_files=run.incomplete_files, duplicates=run.duplicates,
        late_chunks=run.late_chunks, dropped_late_chunks=run.dropped_late_chunks,
        awaiting_files=len(run.awaiting), forgotten_files=run.forgotten_files,
        slices=int(run.moments.n), first_daq_time=run.first_daq_time,
        last_daq_time=run.last_daq_time, last_file=run.last_file,
        emitted_time=emitted_time, mean=run.moments.mean, sem=run.moments.sem,
        baseline=analysis.baseline, excess_sigma=analysis.excess_sigma,
        matched_sigma=analysis.matched_sigma, radiometer_ratio=analysis.radiometer_ratio,
        config=config, candidates=_strongest(analysis.candidates),
        candidate_count=len(analysis.candidates),
    )  # fmt: skip


def _strongest(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The strongest MAX_LISTED_CANDIDATES candidates, in bin order (bounds the message)."""
    if len(candidates) <= MAX_LISTED_CANDIDATES:
        return list(candidates)
    strongest = sorted(candidates, key=lambda c: c.significance, reverse=True)
    return sorted(strongest[:MAX_LISTED_CANDIDATES], key=lambda c: c.bin)
