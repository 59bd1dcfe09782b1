"""The writers' flushes: durable, atomic, and exactly once across a crash at any step.

A crash is simulated by making the n-th filesystem step (an fsync or a rename) raise;
the archiver then restarts as it would: a new writer recovers, and every record from
the recovered positions on is read again and flushed. Whatever step failed, the archive
must hold every record exactly once. The same for the object-store writer against a real
S3 gateway (SeaweedFS), with a crash between any two of its requests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from quax_archiver import writer as writer_module
from quax_archiver.objectstore import ObjectStoreWriter
from quax_archiver.writer import ArchiveWriter, Batch
from quaxspec.archive import ArchiveLocation, ArchiveReader, open_archive
from quaxspec.spectra import FileSpectrum, RunSpectrum

N_FFT = 8
TOPIC, RUNS_TOPIC = "quax.spectra", "quax.runs"


def _file(run_id: str, number: int, day: int = 0) -> FileSpectrum:
    values = np.linspace(1.0, 2.0, N_FFT) * (number + 1)
    return FileSpectrum(
        run_id=run_id, file_number=number, n_fft=N_FFT, fs=2e6, f_lo=0.0, count=5,
        expected_count=5, duplicates=0, revision=0, late_chunks=0,
        daq_time=1_764_547_200.0 + 86_400 * day + 4.2 * number, emitted_time=0.0,
        mean=values, std=values / 2, spectral_kurtosis=np.ones(N_FFT),
    )  # fmt: skip


def _run(run_id: str, slices: int) -> RunSpectrum:
    values = np.full(N_FFT, float(slices))
    return RunSpectrum(
        run_id=run_id, n_fft=N_FFT, fs=2e6, f_lo=0.0, files=slices // 5, incomplete_files=0,
        duplicates=0, late_chunks=0, dropped_late_chunks=0, awaiting_files=0,
        forgotten_files=0, slices=slices, first_daq_time=0.0, last_daq_time=1.0, last_file=0,
        emitted_time=float(slices), mean=values, sem=values, baseline=values,
        excess_sigma=values, matched_sigma=values, radiometer_ratio=1.0,
    )  # fmt: skip


#: The stream: (topic, partition, offset, message); two runs, two days, two partitions.
STREAM = [
    *[(TOPIC, n % 2, n // 2, _file("a" if n % 2 else "b", n, day=n // 6)) for n in range(12)],
    *[(RUNS_TOPIC, 0, k, _run("a", 5 * (k + 1))) for k in range(3)],
]


def _batch(records: list[tuple[str, int, int, object]]) -> Batch:
    batch = Batch()
    for topic, partition, offset, message in records:
        batch.advance(topic, partition, offset)
        if isinstance(message, FileSpectrum):
            batch.add_file(message, partition, offset)
        elif isinstance(message, RunSpectrum):
            batch.add_run(message, message.to_bytes(), partition, offset)
    return batch


def _unread(records: list[tuple[str, int, int, object]], positions: dict[str, dict[int, int]]):
    return [r for r in records if r[2] >= positions.get(r[0], {}).get(r[1], 0)]


def _archived_keys(root: Path) -> list[tuple[int, int]]:
    table = ds.dataset(root / "spectra", format="parquet").to_table()
    partitions, offsets = table["kafka_partition"].to_pylist(), table["kafka_offset"].to_pylist()
    return sorted(zip(partitions, offsets, strict=True))


def test_a_flush_is_read_back_whole_and_moves_the_positions(tmp_path: Path) -> None:
    writer = ArchiveWriter(tmp_path)
    assert writer.recover() == {}

    written = writer.flush(_batch(STREAM))

    reader = ArchiveReader(tmp_path)
    assert written == 2 * 2 + 1  # (run, day, partition) groups, one run state
    assert _archived_keys(tmp_path) == sorted((n % 2, n // 2) for n in range(12))
    for number, spectrum in reader.files("a").items():
        assert spectrum.to_bytes() == STREAM[number][3].to_bytes()  # type: ignore[union-attr]
    assert reader.run("a") is not None
    assert reader.run("a").slices == 15
    assert ArchiveWriter(tmp_path).recover() == {TOPIC: {0: 6, 1: 6}, RUNS_TOPIC: {0: 3}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_positions.json", "runs", "spectra"]


def test_an_older_run_update_read_again_does_not_replace_a_newer_state(tmp_path: Path) -> None:
    writer = ArchiveWriter(tmp_path)
    writer.recover()
    writer.flush(_batch([(RUNS_TOPIC, 0, 5, _run("a", 50))]))
    writer.flush(_batch([(RUNS_TOPIC, 0, 6, _run("a", 20))]))  # a replayed older emission

    state = ArchiveReader(tmp_path).run("a")
    assert state is not None
    assert state.slices == 50
    assert writer.positions[RUNS_TOPIC] == {0: 7}


class _CrashError(Exception):
    pass


class _FailingDisk:
    """Counts the writer's fsyncs and renames; the ``crash_at``-th one raises (0: none does)."""

    def __init__(self, crash_at: int = 0) -> None:
        self.crash_at = crash_at
        self.steps = 0
        self._fsync, self._replace = os.fsync, os.replace

    def _step(self) -> None:
        self.steps += 1
        if self.steps == self.crash_at:
            raise _CrashError

    def fsync(self, descriptor: int) -> None:
        self._step()
        self._fsync(descriptor)

    def replace(self, source: Path, target: Path) -> None:
        self._step()
        self._replace(source, target)

    def flush_stream(self, root: Path) -> None:
        """One writer flushing the stream in two batches on this disk."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(writer_module.os, "fsync", self.fsync)
            patch.setattr(writer_module.os, "replace", self.replace)
            writer = ArchiveWriter(root)
            writer.recover()
            writer.flush(_batch(STREAM[:6]))
            writer.flush(_batch(STREAM[6:]))


def test_a_crash_at_any_step_of_a_flush_leaves_every_record_exactly_once(tmp_path: Path) -> None:
    counting = _FailingDisk()
    counting.flush_stream(tmp_path / "count")
    assert counting.steps > 20
    for crash_at in range(1, counting.steps + 1):
        root = tmp_path / f"crash-{crash_at}"
        with pytest.raises(_CrashError):
            _FailingDisk(crash_at).flush_stream(root)

        restarted = ArchiveWriter(root)  # the process starts again
        positions = restarted.recover()
        restarted.flush(_batch(_unread(STREAM, positions)))

        assert _archived_keys(root) == sorted((n % 2, n // 2) for n in range(12)), crash_at
        assert not list(root.rglob(".*.tmp")), crash_at
        state = ArchiveReader(root).run("a")
        assert state is not None, crash_at
        assert state.slices == 15, crash_at


# The object store ----------------------------------------------------------------------


class _CrashingWriter(ObjectStoreWriter):
    """Counts the store's writes and deletes; the ``crash_at``-th one raises (0: none does)."""

    def __init__(self, location: ArchiveLocation, crash_at: int = 0) -> None:
        super().__init__(location)
        self.crash_at = crash_at
        self.steps = 0

    def _step(self) -> None:
        self.steps += 1
        if self.steps == self.crash_at:
            raise _CrashError

    def _write_parquet(self, schema: pa.Schema, tables: Iterable[pa.Table], path: str) -> None:
        self._step()
        super()._write_parquet(schema, tables, path)

    def _write_json(self, name: str, document: object) -> None:
        self._step()
        super()._write_json(name, document)

    def _delete(self, path: str) -> None:
        self._step()
        super()._delete(path)


def _archive(s3) -> ArchiveLocation:
    s3.bucket("archive")
    return open_archive(f"s3://archive/{uuid.uuid4().hex[:8]}", s3.settings())


def _stored_keys(location: ArchiveLocation) -> list[tuple[int, int]]:
    table = ds.dataset(
        location.path("spectra"), format="parquet", filesystem=location.filesystem
    ).to_table()
    partitions, offsets = table["kafka_partition"].to_pylist(), table["kafka_offset"].to_pylist()
    return sorted(zip(partitions, offsets, strict=True))


def _flush_stream(writer: ObjectStoreWriter) -> None:
    writer.recover()
    writer.flush(_batch(STREAM[:6]))
    writer.flush(_batch(STREAM[6:]))


@pytest.mark.s3
def test_a_flush_to_the_store_is_read_back_whole_and_moves_the_positions(s3) -> None:
    location = _archive(s3)
    writer = ObjectStoreWriter(location)
    assert writer.recover() == {}

    written = writer.flush(_batch(STREAM))

    reader = ArchiveReader(location)
    assert written == 2 * 2 + 1
    assert _stored_keys(location) == sorted((n % 2, n // 2) for n in range(12))
    for number, spectrum in reader.files("a").items():
        assert spectrum.to_bytes() == STREAM[number][3].to_bytes()  # type: ignore[union-attr]
    assert reader.run_ids() == ["a"]
    assert reader.run("a").slices == 15  # type: ignore[union-attr]
    assert reader.state_version("a") is not None
    assert ObjectStoreWriter(location).recover() == {TOPIC: {0: 6, 1: 6}, RUNS_TOPIC: {0: 3}}
    names = {i.base_name for i in location.below(location.root)}
    assert "_journal.json" not in names
    assert "_positions.json" in names


@pytest.mark.s3
def test_a_crash_between_any_two_store_operations_leaves_every_record_exactly_once(s3) -> None:
    counting = _CrashingWriter(_archive(s3))
    _flush_stream(counting)
    assert counting.steps >= 10
    for crash_at in range(1, counting.steps + 1):
        location = _archive(s3)
        with pytest.raises(_CrashError):
            _flush_stream(_CrashingWriter(location, crash_at))

        restarted = ObjectStoreWriter(location)  # the process starts again
        positions = restarted.recover()
        restarted.flush(_batch(_unread(STREAM, positions)))

        assert _stored_keys(location) == sorted((n % 2, n // 2) for n in range(12)), crash_at
        state = ArchiveReader(location).run("a")
        assert state is not None, crash_at
        assert state.slices == 15, crash_at
