"""QUAX DAQ files: naming, pairing, validation, memory-mapped reading and slicing.

The DAQ writes a pair of files per acquisition, ``duck_i_NNNNN.dat`` and
``duck_q_NNNNN.dat``: the I and Q components of the complex baseband signal as
little-endian float32 samples. Any length is accepted (the task text says 8193·2¹⁰
samples, the public data set has 2²³); a pair must have equal, non-zero lengths.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "DEFAULT_FS",
    "DEFAULT_N_FFT",
    "DEFAULT_N_SAMPLES",
    "DEFAULT_SLICES_PER_CHUNK",
    "SAMPLE_DTYPE",
    "DaqFileError",
    "DaqRecord",
    "DirectoryScan",
    "FilePair",
    "NamePairing",
    "PairDigest",
    "SliceLayout",
    "check_pair_sizes",
    "check_size",
    "pair_names",
    "pair_paths",
    "read_pair",
    "record_from_bytes",
    "scan_directory",
    "write_pair",
]

#: ADC sampling rate of the QUAX DAQ (samples per second, complex).
DEFAULT_FS = 2.0e6
#: Samples per FFT slice (3·2¹⁰: 651 Hz bins over the 2 MHz band).
DEFAULT_N_FFT = 3072
#: Samples per file in the public QUAX data set (2²³, 32 MiB per file).
DEFAULT_N_SAMPLES = 2**23
#: Slices per Kafka message (32 × 3072 I/Q float32 = 768 KiB, well under 1 MB).
DEFAULT_SLICES_PER_CHUNK = 32
#: On-disk sample type: little-endian float32.
SAMPLE_DTYPE = np.dtype("<f4")

_NAME = re.compile(r"duck_(?P<channel>[iq])_(?P<number>[0-9]{5,})\.dat")


class DaqFileError(Exception):
    """A DAQ file or pair cannot be used; the message names the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FilePair:
    """The I and Q files of one acquisition."""

    number: int
    i_path: Path
    q_path: Path


@dataclass(frozen=True, slots=True)
class DirectoryScan:
    """A directory's complete pairs, in file-number order, and what is wrong with the rest."""

    pairs: list[FilePair]
    problems: list[DaqFileError]


@dataclass(frozen=True, slots=True)
class NamePairing:
    """Complete pairs as (number, I name, Q name) in file-number order, and the problems."""

    pairs: list[tuple[int, str, str]]
    problems: list[DaqFileError]


@dataclass(frozen=True, slots=True)
class SliceLayout:
    """How a file of ``n_samples`` is cut into slices of ``n_fft``; the remainder is dropped."""

    n_samples: int
    n_fft: int

    def __post_init__(self) -> None:
        if self.n_fft < 2:
            raise ValueError(f"n_fft must be at least 2, got {self.n_fft}")

    @property
    def n_slices(self) -> int:
        """Complete slices in the file."""
        return self.n_samples // self.n_fft

    @property
    def remainder(self) -> int:
        """Samples after the last complete slice (not analysed)."""
        return self.n_samples % self.n_fft


@dataclass(frozen=True, slots=True)
class DaqRecord:
    """The samples of one acquisition, from files (memory-mapped) or from the synthetic DAQ."""

    number: int
    i: NDArray[np.float32]
    q: NDArray[np.float32]
    #: Unix time at which the DAQ finished the file.
    daq_time: float
    #: Where the samples come from (the I file's path, or "synthetic").
    source: str

    @property
    def n_samples(self) -> int:
        """Samples per channel."""
        return int(self.i.shape[0])

    def fingerprint(self) -> str:
        """What identifies the content of the pair (see :class:`PairDigest`)."""
        digest = PairDigest()
        digest.update(self.i, self.q)
        return digest.hexdigest()

    def layout(self, n_fft: int) -> SliceLayout:
        """The slicing of this record for ``n_fft``."""
        return SliceLayout(self.n_samples, n_fft)

    def slices(
        self, n_fft: int, start: int = 0, stop: int | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """I and Q of slices ``start:stop`` as (k, n_fft) views (no copy)."""
        n = self.layout(n_fft).n_slices
        stop = n if stop is None else stop
        if not 0 <= start <= stop <= n:
            raise ValueError(f"slice range {start}:{stop} outside 0:{n}")
        lo, hi = start * n_fft, stop * n_fft
        return self.i[lo:hi].reshape(-1, n_fft), self.q[lo:hi].reshape(-1, n_fft)


class PairDigest:
    """A fingerprint of a pair: SHA-256 of the I bytes and of the Q bytes, 32 hex digits.

    Two acquisitions never share a file's samples, so a file number seen again with another
    fingerprint is another acquisition, not a repeat. I and Q are hashed apart so that a
    pair sent while the DAQ writes it can be hashed piece by piece, in order, and compared
    with the finished files. SHA-256 runs at about 2 GB/s here (hardware SHA) and releases
    the GIL: ~35 ms for a 64 MiB pair.
    """

    def __init__(self) -> None:
        self._i = hashlib.sha256()
        self._q = hashlib.sha256()

    def update(self, i: NDArray[np.float32], q: NDArray[np.float32]) -> None:
        """Add the next samples of each channel."""
        self._i.update(np.ascontiguousarray(i).data.cast("B"))
        self._q.update(np.ascontiguousarray(q).data.cast("B"))

    def hexdigest(self) -> str:
        """The fingerprint of everything added so far."""
        return self._i.hexdigest()[:16] + self._q.hexdigest()[:16]


def pair_paths(directory: Path, number: int) -> tuple[Path, Path]:
    """Paths of the I and Q files of acquisition ``number`` in ``directory``."""
    return directory / f"duck_i_{number:05d}.dat", directory / f"duck_q_{number:05d}.dat"


def pair_names(names: Iterable[str]) -> NamePairing:
    """Pair DAQ file names (paths or object keys; matched on the part after the last ``/``).

    Names that are not DAQ files are ignored; a file without its partner, or a second file
    of a channel and number, is a problem, not a stop. Shared by folders and buckets.
    """
    found: dict[int, dict[str, str]] = {}
    problems: list[DaqFileError] = []
    for name in names:
        match = _NAME.fullmatch(name.rpartition("/")[2])
        if not match:
            continue
        channels = found.setdefault(int(match["number"]), {})
        channel = match["channel"]
        if channel in channels:
            first = channels[channel].rpartition("/")[2]
            problems.append(DaqFileError(name, f"same file number as {first}; skipped"))
            continue
        channels[channel] = name
    pairs: list[tuple[int, str, str]] = []
    for number in sorted(found):
        channels = found[number]
        if "i" in channels and "q" in channels:
            pairs.append((number, channels["i"], channels["q"]))
        else:
            present, missing = ("i", "q") if "i" in channels else ("q", "i")
            problems.append(
                DaqFileError(channels[present], f"no {missing.upper()} partner (duck_{missing}_…)")
            )
    return NamePairing(pairs, problems)


def scan_directory(directory: Path) -> DirectoryScan:
    """Find the DAQ pairs in ``directory``; a file without its partner is a problem, not a stop."""
    if not directory.is_dir():
        raise DaqFileError(directory, "not a directory")
    files = (entry.path for entry in os.scandir(directory) if entry.is_file())
    pairing = pair_names(files)
    pairs = [FilePair(number, Path(i), Path(q)) for number, i, q in pairing.pairs]
    return DirectoryScan(pairs, pairing.problems)


def check_pair_sizes(i_name: str | Path, i_bytes: int, q_name: str | Path, q_bytes: int) -> None:
    """Raise :class:`DaqFileError` unless both files hold the same, non-zero whole samples."""
    check_size(i_name, i_bytes)
    check_size(q_name, q_bytes)
    if i_bytes != q_bytes:
        q_short = str(q_name).rpartition("/")[2]
        raise DaqFileError(i_name, f"I has {i_bytes // 4} samples but {q_short} has {q_bytes // 4}")


def check_size(name: str | Path, size: int) -> None:
    """Raise :class:`DaqFileError` unless ``size`` bytes are a non-zero whole of float32 samples."""
    if size == 0:
        raise DaqFileError(name, "empty file")
    if size % SAMPLE_DTYPE.itemsize:
        raise DaqFileError(
            name, f"size {size} bytes is not a whole number of float32 samples (truncated?)"
        )


def read_pair(pair: FilePair, *, daq_time: float | None = None) -> DaqRecord:
    """Memory-map a pair after checking that both files are usable and of equal length."""
    size_i, size_q = _checked_size(pair.i_path), _checked_size(pair.q_path)
    check_pair_sizes(pair.i_path, size_i, pair.q_path, size_q)
    if daq_time is None:
        daq_time = max(path.stat().st_mtime for path in (pair.i_path, pair.q_path))
    i = np.memmap(pair.i_path, dtype=SAMPLE_DTYPE, mode="r")
    q = np.memmap(pair.q_path, dtype=SAMPLE_DTYPE, mode="r")
    return DaqRecord(number=pair.number, i=i, q=q, daq_time=daq_time, source=str(pair.i_path))


def record_from_bytes(
    number: int, i: bytes, q: bytes, *, i_name: str, q_name: str, daq_time: float
) -> DaqRecord:
    """A pair read into memory (from an object store) as a record, checked as files are."""
    check_pair_sizes(i_name, len(i), q_name, len(q))
    i_samples = np.frombuffer(i, dtype=SAMPLE_DTYPE)
    q_samples = np.frombuffer(q, dtype=SAMPLE_DTYPE)
    return DaqRecord(number=number, i=i_samples, q=q_samples, daq_time=daq_time, source=i_name)


def write_pair(
    directory: Path, number: int, i: NDArray[np.float32], q: NDArray[np.float32]
) -> FilePair:
    """Write one acquisition as the DAQ does (used by the synthetic DAQ and by tests)."""
    if i.shape != q.shape:
        raise ValueError(f"I and Q lengths differ: {i.shape} and {q.shape}")
    i_path, q_path = pair_paths(directory, number)
    np.asarray(i, dtype=SAMPLE_DTYPE).tofile(i_path)
    np.asarray(q, dtype=SAMPLE_DTYPE).tofile(q_path)
    return FilePair(number, i_path, q_path)


def _checked_size(path: Path) -> int:
    try:
        size = path.stat().st_size
    except OSError as error:
        raise DaqFileError(path, f"unreadable ({error.strerror})") from error
    check_size(path, size)
    if not os.access(path, os.R_OK):
        raise DaqFileError(path, "unreadable (permission denied)")
    return size
