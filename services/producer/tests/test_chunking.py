"""Cutting records into raw chunks, and spreading a file's chunks over partitions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quax_producer.chunking import ChunkPlan, NoSlicesError, chunk_record, partition_for
from quax_producer.settings import ProducerSettings
from quaxspec.daq import DaqRecord
from quaxspec.messages import RawChunk


def _record(n_samples: int, *, number: int = 7) -> DaqRecord:
    samples = np.arange(2 * n_samples, dtype=np.float32)
    return DaqRecord(
        number=number, i=samples[:n_samples], q=-samples[n_samples:], daq_time=1.7e9, source="t"
    )


def _plan(n_fft: int, slices_per_chunk: int) -> ChunkPlan:
    return ChunkPlan(
        run_id="run-1", n_fft=n_fft, slices_per_chunk=slices_per_chunk, fs=2e6, f_lo=5e9
    )


@given(
    n_fft=st.integers(2, 64),
    n_slices=st.integers(1, 200),
    remainder=st.integers(0, 63),
    per_chunk=st.integers(1, 50),
)
def test_chunks_cover_every_slice_once_in_order(n_fft, n_slices, remainder, per_chunk):
    remainder %= n_fft
    record = _record(n_fft * n_slices + remainder)
    plan = _plan(n_fft, per_chunk)

    chunks = list(chunk_record(record, plan))

    assert len(chunks) == plan.n_chunks(record) == -(-n_slices // per_chunk)
    assert [c.first_slice for c in chunks] == list(range(0, n_slices, per_chunk))
    assert all(c.n_slices == per_chunk for c in chunks[:-1])
    assert 1 <= chunks[-1].n_slices <= per_chunk
    covered = n_slices * n_fft
    np.testing.assert_array_equal(np.concatenate([c.i.ravel() for c in chunks]), record.i[:covered])
    np.testing.assert_array_equal(np.concatenate([c.q.ravel() for c in chunks]), record.q[:covered])
    for chunk in chunks:
        assert (chunk.run_id, chunk.file_number, chunk.total_slices) == ("run-1", 7, n_slices)
        assert (chunk.n_fft, chunk.fs, chunk.f_lo, chunk.daq_time) == (n_fft, 2e6, 5e9, 1.7e9)


def test_chunks_are_views_and_round_trip_through_bytes():
    record = _record(3072 * 40 + 11)
    chunks = list(chunk_record(record, _plan(3072, 32)))

    assert all(np.shares_memory(c.i, record.i) and np.shares_memory(c.q, record.q) for c in chunks)
    decoded = RawChunk.from_bytes(chunks[1].to_bytes())
    assert (decoded.first_slice, decoded.n_slices, decoded.total_slices) == (32, 8, 40)
    np.testing.assert_array_equal(decoded.i, chunks[1].i)
    np.testing.assert_array_equal(decoded.q, chunks[1].q)


def test_default_chunks_stay_well_under_one_mebibyte():
    settings = ProducerSettings()
    plan = _plan(settings.n_fft, settings.slices_per_chunk)
    record = _record(settings.n_fft * settings.slices_per_chunk * 2)

    sizes = [len(chunk.to_bytes()) for chunk in chunk_record(record, plan)]

    assert sizes == [sizes[0]] * 2
    assert sizes[0] < 800 * 1024 < 2**20


def test_a_record_shorter_than_one_slice_is_a_bad_pair():
    record = _record(3071)

    with pytest.raises(NoSlicesError, match="3071 samples is less than one slice of 3072"):
        chunk_record(record, _plan(3072, 32))


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
