"""Write a batch of records to the archive atomically, with the Kafka positions it reaches.

A flush goes through a journal, so that a crash at any point leaves either the whole
batch or none of it, and the positions always say exactly what the archive holds:

1. every new Parquet file is written under a hidden temporary name and fsynced;
2. the journal (``_journal.json``: the renames to do and the positions after the batch)
   is written and renamed into place — this is the commit point;
3. the renames are done, the positions file (``_positions.json``) replaced, the journal
   removed; every step is fsynced (files and directories).

At start, :meth:`ArchiveWriter.recover` finishes a committed journal (its renames are
idempotent) and deletes temporary files no journal names: a batch cut before its commit
point is read again from Kafka, from the positions. The positions, not the consumer
group's committed offsets, decide where the archiver resumes; Kafka's are committed
after each flush so that the group's lag shows how far behind the archive is.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import structlog

from quaxspec.archive import (
    FILE_COLUMNS,
    RUN_COLUMNS,
    file_rows_table,
    run_row_table,
    run_state_path,
    spectra_dir,
    utc_date,
)
from quaxspec.spectra import FileSpectrum, RunSpectrum

__all__ = ["ArchiveWriter", "Batch", "Positions", "file_parts", "merged_positions", "positions_of"]

log = structlog.get_logger("quax.archiver")

#: Next offset to read, by topic and partition.
Positions = dict[str, dict[int, int]]

JOURNAL = "_journal.json"
POSITIONS = "_positions.json"
_TEMPORARY = ".tmp"
_COMPRESSION = "zstd"
#: File rows per Parquet row group (~9 MB of arrays at n_fft 3072): a flush holds one
#: group's table at a time, and a reader asking for some file numbers skips the groups
#: whose statistics exclude them.
ROW_GROUP_ROWS = 128


@dataclass(slots=True)
class _RunUpdate:
    run: RunSpectrum
    message: bytes
    partition: int
    offset: int


@dataclass(slots=True)
class Batch:
    """Records read since the last flush: file rows, the newest state of each run, positions."""

    files: list[tuple[FileSpectrum, int, int]] = field(default_factory=list)
    runs: dict[str, _RunUpdate] = field(default_factory=dict)
    positions: Positions = field(default_factory=dict)
    array_bytes: int = 0
    #: When the first record was taken (time.monotonic), None while the batch is empty.
    opened: float | None = None

    def add_file(self, spectrum: FileSpectrum, partition: int, offset: int) -> None:
        """A record of quax.spectra, as a row."""
        self.files.append((spectrum, partition, offset))
        self.array_bytes += 3 * spectrum.n_fft * 8

    def add_run(self, run: RunSpectrum, message: bytes, partition: int, offset: int) -> None:
        """A record of quax.runs; a run keeps the update with the most slices."""
        kept = self.runs.get(run.run_id)
        if kept is None or run.slices >= kept.run.slices:
            self.runs[run.run_id] = _RunUpdate(run, message, partition, offset)

    def advance(self, topic: str, partition: int, offset: int) -> None:
        """Every record read moves its partition's position, whether it was kept or not."""
        self.positions.setdefault(topic, {})[partition] = offset + 1
        if self.opened is None:
            self.opened = time.monotonic()

    def age(self) -> float:
        """Seconds since the first record of the batch was taken (0 for an empty batch)."""
        return 0.0 if self.opened is None else time.monotonic() - self.opened

    @property
    def records(self) -> int:
        """File rows and run updates held."""
        return len(self.files) + len(self.runs)

    def __bool__(self) -> bool:
        return bool(self.files or self.runs or self.positions)


class ArchiveWriter:
    """The archive's only writer: atomic flushes and the positions they reach."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.positions: Positions = {}

    def recover(self) -> Positions:
        """Finish or discard what a crash left, and return the positions the archive holds."""
        self.root.mkdir(parents=True, exist_ok=True)
        journal = self.root / JOURNAL
        if journal.exists():
            log.info("Finishing the flush a stop interrupted.", journal=str(journal))
            self._apply(json.loads(journal.read_text()))
        for stray in self._temporaries():
            log.info("Removed a file of a flush cut before it was committed.", path=str(stray))
            stray.unlink()
        stored = self.root / POSITIONS
        if stored.exists():
            self.positions = positions_of(json.loads(stored.read_text()))
        return {topic: dict(parts) for topic, parts in self.positions.items()}

    def flush(self, batch: Batch) -> int:
        """Make ``batch`` durable and move the positions; return the Parquet files written."""
        renames = [*self._write_files(batch), *self._write_runs(batch)]
        positions = merged_positions(self.positions, batch)
        journal = {
            "renames": [[str(t.relative_to(self.root)), str(f.relative_to(self.root))]
                        for t, f in renames],
            "positions": positions,
        }  # fmt: skip
        _write_atomically(self.root / JOURNAL, json.dumps(journal).encode())
        self._apply(journal)
        pa.default_memory_pool().release_unused()  # the encoders' pages, idle until next flush
        return len(renames)

    def _write_files(self, batch: Batch) -> Iterator[tuple[Path, Path]]:
        for relative, tables in file_parts(batch):
            yield self._write_hidden(FILE_COLUMNS, tables, self.root / relative)

    def _write_runs(self, batch: Batch) -> Iterator[tuple[Path, Path]]:
        for update in batch.runs.values():
            final = run_state_path(self.root, update.run.run_id)
            if final.exists() and _archived_slices(final) > update.run.slices:
                continue  # an older update read again (the aggregator re-emitted it)
            table = run_row_table(update.run, update.message, update.partition, update.offset)
            yield self._write_hidden(RUN_COLUMNS, [table], final)

    def _write_hidden(
        self, schema: pa.Schema, tables: Iterable[pa.Table], final: Path
    ) -> tuple[Path, Path]:
        if not final.parent.is_dir():
            final.parent.mkdir(parents=True)
            for directory in final.parent.relative_to(self.root).parents:  # their new entries
                _fsync_directory(self.root / directory)
        temporary = final.with_name(f".{final.name}{_TEMPORARY}")
        # Row group by row group: only one group's table is ever held besides the batch.
        with pq.ParquetWriter(temporary, schema, compression=_COMPRESSION) as out:
            for table in tables:
                out.write_table(table)
        _fsync_file(temporary)
        return temporary, final

    def _apply(self, journal: Mapping[str, object]) -> None:
        renames = journal["renames"]
        assert isinstance(renames, list)
        for temporary_name, final_name in renames:
            temporary, final = self.root / temporary_name, self.root / final_name
            if temporary.exists():  # absent: renamed before the stop
                os.replace(temporary, final)
                _fsync_directory(final.parent)
        self.positions = positions_of(journal["positions"])
        _write_atomically(self.root / POSITIONS, json.dumps(self.positions).encode())
        (self.root / JOURNAL).unlink()
        _fsync_directory(self.root)

    def _temporaries(self) -> Iterator[Path]:
        for directory, _, names in os.walk(self.root):
            for name in names:
                if name.startswith(".") and name.endswith(_TEMPORARY):
                    yield Path(directory) / name


def file_parts(batch: Batch) -> Iterator[tuple[str, Iterator[pa.Table]]]:
    """The batch's Parquet parts: one per run, day and partition, as (path, row groups).

    A part is named by the Kafka offsets of its first and last rows, so a part of a later
    flush never has the name of an earlier one.
    """
    groups: dict[tuple[str, str, int], list[tuple[FileSpectrum, int, int]]] = defaultdict(list)
    for row in batch.files:
        spectrum, partition, _ = row
        groups[(spectrum.run_id, utc_date(spectrum.daq_time), partition)].append(row)
    for (run_id, date, partition), rows in groups.items():
        offsets = [offset for _, _, offset in rows]
        name = f"part-{partition}-{min(offsets):012d}-{max(offsets):012d}.parquet"
        relative = spectra_dir(Path(), run_id, date) / name
        yield str(relative), _row_groups(rows)


def _row_groups(rows: list[tuple[FileSpectrum, int, int]]) -> Iterator[pa.Table]:
    for start in range(0, len(rows), ROW_GROUP_ROWS):
        yield file_rows_table(rows[start : start + ROW_GROUP_ROWS])


def merged_positions(old: Positions, batch: Batch) -> Positions:
    """The positions after ``batch``."""
    positions = {topic: dict(parts) for topic, parts in old.items()}
    for topic, parts in batch.positions.items():
        positions.setdefault(topic, {}).update(parts)
    return positions


def positions_of(document: object) -> Positions:
    """Positions from their JSON form (partitions are strings there)."""
    assert isinstance(document, dict)
    return {
        str(topic): {int(partition): int(offset) for partition, offset in parts.items()}
        for topic, parts in document.items()
    }


def _archived_slices(path: Path) -> int:
    return int(pq.read_table(path, columns=["slices"]).column("slices")[0].as_py())


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}{_TEMPORARY}")
    with temporary.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    _fsync_directory(path.parent)


def _fsync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
