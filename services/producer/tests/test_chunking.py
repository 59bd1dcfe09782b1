"""How files are cut (slices, chunk size) and a file's chunks spread over partitions."""

from __future__ import annotations

import numpy as np
import pytest

from quax_producer.chunking import ChunkPlan, NoSlicesError, partition_for
from quaxspec.daq import DaqRecord


def _record(n_samples: int, *, number: int = 7) -> DaqRecord:
    samples = np.arange(2 * n_samples, dtype=np.float32)
    return DaqRecord(
        number=number, i=samples[:n_samples], q=-samples[n_samples:], daq_time=1.7e9, source="t"
    )


def _plan(n_fft: int, slices_per_chunk: int) -> ChunkPlan:
    return ChunkPlan(
        run_id="run-1", n_fft=n_fft, slices_per_chunk=slices_per_chunk, fs=2e6, f_lo=5e9
    )


def test_a_record_shorter_than_one_slice_is_a_bad_pair():
    record = _record(3071)

    with pytest.raises(NoSlicesError, match="3071 samples is less than one slice of 3072"):
        _plan(3072, 32).total_slices(record)


@pytest.mark.parametrize("partitions", [1, 2, 4, 7])
def test_each_file_is_spread_over_every_partition(partitions):
    for file_number in range(20):
        plan = [
            partition_for(file_number=file_number, chunk_index=k, partitions=partitions)
            for k in range(86)  # chunks of a 2²³-sample file
        ]
        assert set(plan) == set(range(partitions))
        counts = np.bincount(plan, minlength=partitions)
        assert counts.max() - counts.min() <= 1  # round robin: as even as can be


def test_consecutive_files_start_on_different_partitions():
    firsts = [partition_for(file_number=n, chunk_index=0, partitions=4) for n in range(8)]

    assert firsts == [0, 1, 2, 3, 0, 1, 2, 3]
