"""How files are cut into chunks (slice length, chunk size), and the partition of each chunk."""

from __future__ import annotations

from dataclasses import dataclass

from quaxspec.daq import SAMPLE_DTYPE, DaqFileError, DaqRecord

__all__ = ["ChunkPlan", "NoSlicesError", "partition_for"]


class NoSlicesError(DaqFileError):
    """A record shorter than one slice: nothing of it can be analysed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkPlan:
    """How every record of a run is cut: slice length, chunk size and acquisition metadata."""

    run_id: str
    n_fft: int
    slices_per_chunk: int
    fs: float
    f_lo: float

    def __post_init__(self) -> None:
        if self.slices_per_chunk < 1:
            raise ValueError(f"slices per chunk must be at least 1, got {self.slices_per_chunk}")

    def chunk_bytes(self, n_slices: int) -> int:
        """Bytes of I and Q samples in a chunk of ``n_slices``."""
        return 2 * SAMPLE_DTYPE.itemsize * self.n_fft * n_slices

    def total_slices(self, record: DaqRecord) -> int:
        """Complete slices of the record; :class:`NoSlicesError` if there is none."""
        total = record.layout(self.n_fft).n_slices
        if total == 0:
            raise NoSlicesError(
                record.source, f"{record.n_samples} samples is less than one slice of {self.n_fft}"
            )
        return total


def partition_for(*, file_number: int, chunk_index: int, partitions: int) -> int:
    """Partition index (0 … partitions−1) of a file's ``chunk_index``-th chunk.

    Round robin so that every worker shares every file; each file starts one partition
    further than the previous one, so that short files (or the short last chunks) do not
    all land on partition 0.
    """
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, got {partitions}")
    return (file_number + chunk_index) % partitions
