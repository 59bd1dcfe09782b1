"""The aggregator's tables: files and runs, as raw bytes of the library's accumulators.

The files table holds open files and the files closed before they finished that their run
still keeps for late chunks (quaxspec.merging).

The first two are keyed so that they live in the partition of the run's partials (the partials
topic is keyed by run, and a table's changelog partition follows the event that writes
it): a run and its files are always owned by the same worker. A third table holds the
next partials offset expected in each partition (quaxspec.offsets.OffsetLedger), written
by the events of that partition, so it moves and is restored together with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TableT

from quaxspec.aggregation import FileAccumulator, RunAccumulator
from quaxspec.topics import CHANGELOG_CONFIG, PARTIALS, TABLES

__all__ = ["Tables", "file_key"]


def file_key(run_id: str, file_number: int) -> bytes:
    """Key of an open file in the files table."""
    return f"{run_id}/{file_number}".encode()


@dataclass(frozen=True, slots=True)
class Tables:
    """Typed access to the three tables."""

    files: TableT[bytes, bytes]
    runs: TableT[bytes, bytes]
    offsets: TableT[bytes, bytes]

    @classmethod
    def create(cls, app: faust.App) -> Tables:
        """Declare the tables on ``app``."""
        # Faust compacts changelogs; quaxspec.topics.CHANGELOG_CONFIG adds the rest, as the
        # topics made up front have it.
        changelog = {k: v for k, v in CHANGELOG_CONFIG.items() if k != "cleanup.policy"}

        def table(name: str, description: str) -> TableT[bytes, bytes]:
            return app.Table(
                name,
                default=None,
                partitions=PARTIALS.partitions,
                key_type=bytes,
                value_type=bytes,
                extra_topic_configs=changelog,
                help=description,
            )

        files, runs, offsets = TABLES
        return cls(
            files=table(files, "Open files, and closed ones awaiting late chunks, by run/file."),
            runs=table(runs, "Run accumulators by run."),
            offsets=table(offsets, "Next partials offset expected, by partition."),
        )

    def file(self, run_id: str, file_number: int) -> FileAccumulator | None:
        """The open file, if any."""
        data = self.files.get(file_key(run_id, file_number))
        return None if data is None else FileAccumulator.from_bytes(data)

    def run(self, run_id: str) -> RunAccumulator | None:
        """The run's accumulator, if any file of it was closed."""
        data = self.runs.get(run_id.encode())
        return None if data is None else RunAccumulator.from_bytes(data)

    def open_files(self) -> list[FileAccumulator]:
        """Every open file this worker holds (not those closed and kept for late chunks)."""
        files = (FileAccumulator.from_bytes(value) for value in self.files.values() if value)
        return [file for file in files if not file.closed]
