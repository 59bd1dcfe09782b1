"""Write the archive to an object store (S3): each object appears whole, positions last.

An object store has no rename and no directory to fsync, but an object is atomic: it is
seen complete or not at all (a multipart upload cut short leaves nothing visible). A
flush is therefore made in this order:

1. the journal ``_journal.json``: the parts about to be written and the positions after
   the batch;
2. every part, at its final key; then each run's state;
3. ``_positions.json`` — the commit point; then the journal is deleted.

At start, :meth:`ObjectStoreWriter.recover` reads the journal if one is left: if the
positions reached its positions, the flush was committed and only the journal goes;
otherwise the parts it names are deleted (the batch is read again from Kafka, from the
positions). A part is named by its Kafka offsets, all beyond the committed positions, so
a rolled-back part never has the name of a committed one and no row is ever doubled. A
run's state may be written ahead of the positions; it is rewritten with the same or a
newer update when the records are read again (a state never goes back to fewer slices).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import structlog

from quax_archiver.writer import (
    JOURNAL,
    POSITIONS,
    Batch,
    Positions,
    file_parts,
    merged_positions,
    positions_of,
)
from quaxspec.archive import (
    FILE_COLUMNS,
    RUN_COLUMNS,
    ArchiveLocation,
    run_row_table,
    run_state_path,
)

__all__ = ["ObjectStoreWriter"]

log = structlog.get_logger("quax.archiver")

_COMPRESSION = "zstd"


class ObjectStoreWriter:
    """The archive's only writer, in an object store: the same contract as ArchiveWriter."""

    def __init__(self, location: ArchiveLocation) -> None:
        self.location = location
        self.positions: Positions = {}

    def recover(self) -> Positions:
        """Finish or roll back what a crash left; the positions the archive holds."""
        stored = self._read_json(POSITIONS)
        committed = positions_of(stored) if stored is not None else {}
        journal = self._read_json(JOURNAL)
        if journal is not None:
            assert isinstance(journal, dict)
            if positions_of(journal["positions"]) == committed:
                log.info("The last flush was committed; its journal is removed.")
            else:
                for relative in journal["parts"]:
                    path = self.location.path(relative)
                    if self.location.info(path).type == pafs.FileType.File:
                        log.info("Removed a part of a flush cut before its commit.", path=path)
                        self._delete(path)
            self._delete(self.location.path(JOURNAL))
        self.positions = committed
        return {topic: dict(parts) for topic, parts in committed.items()}

    def flush(self, batch: Batch) -> int:
        """Make ``batch`` durable and move the positions; return the Parquet files written."""
        positions = merged_positions(self.positions, batch)
        parts = list(file_parts(batch))
        self._write_json(JOURNAL, {"parts": [p for p, _ in parts], "positions": positions})
        for relative, tables in parts:
            self._write_parquet(FILE_COLUMNS, tables, self.location.path(relative))
        states = 0
        for update in batch.runs.values():
            path = self.location.path(str(run_state_path(Path(), update.run.run_id)))
            if self._archived_slices(path) > update.run.slices:
                continue  # an older update read again (the aggregator re-emitted it)
            table = run_row_table(update.run, update.message, update.partition, update.offset)
            self._write_parquet(RUN_COLUMNS, [table], path)
            states += 1
        self._write_json(POSITIONS, positions)  # the commit point
        self.positions = positions
        self._delete(self.location.path(JOURNAL))
        pa.default_memory_pool().release_unused()
        return len(parts) + states

    def _write_parquet(self, schema: pa.Schema, tables: Iterable[pa.Table], path: str) -> None:
        # The object appears when the writer closes (the upload completes), not before.
        with pq.ParquetWriter(
            path, schema, compression=_COMPRESSION, filesystem=self.location.filesystem
        ) as out:
            for table in tables:
                out.write_table(table)

    def _archived_slices(self, path: str) -> int:
        if self.location.info(path).type != pafs.FileType.File:
            return -1
        table = pq.read_table(path, columns=["slices"], filesystem=self.location.filesystem)
        return int(table.column("slices")[0].as_py())

    def _delete(self, path: str) -> None:
        self.location.filesystem.delete_file(path)

    def _read_json(self, name: str) -> object | None:
        path = self.location.path(name)
        if self.location.info(path).type != pafs.FileType.File:
            return None
        with self.location.filesystem.open_input_stream(path) as stream:
            document: object = json.loads(stream.read())
        return document

    def _write_json(self, name: str, document: object) -> None:
        with self.location.filesystem.open_output_stream(self.location.path(name)) as stream:
            stream.write(json.dumps(document).encode())
