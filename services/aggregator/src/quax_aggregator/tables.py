"""The aggregator's three tables: files, runs and offsets, as raw bytes.

The files table holds the library's file accumulators: open files, and the files closed
before they finished that their run still keeps for late chunks (quaxspec.merging). The
runs table holds the run accumulators. Both live in the partition of the run's partials
(the partials topic is keyed by run, and a table's changelog partition follows the event
that writes it): a run and its files are always owned by the same worker. The offsets
table holds the next partials offset expected in each partition
(quaxspec.offsets.OffsetLedger), written by the events of that partition, so it moves and
is restored together with them.

Every write to a Faust table is also a record on its changelog, and an open file is
rewritten by each of its ~86 partials (48 KB each time). So writes are held in memory,
per partition, and reach the tables together: when a file is closed (the run changes),
or after ``release_every`` records of the partition. The offsets are written last, so
that the changelogs never say more was handled than the state they hold. A worker that
stops with writes held comes back to the last release: the offset guard sees the records
after it as not handled and reads them again, and merging them again gives the same state
(merging is idempotent; a file closed since was released with its close).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator, MutableMapping

import faust
from faust.types import TableT

from quaxspec.aggregation import FileAccumulator, RunAccumulator
from quaxspec.topics import CHANGELOG_CONFIG, PARTIALS, TABLES

__all__ = ["HeldTable", "Tables", "file_key"]


def file_key(run_id: str, file_number: int) -> bytes:
    """Key of an open file in the files table."""
    return f"{run_id}/{file_number}".encode()


class HeldTable(MutableMapping[bytes, bytes]):
    """A table whose writes are held back, per partition, until released; reads see them.

    ``partition`` is the partition of the record being handled: the writes made now belong
    to it. Writes made while it is not among ``owned`` are discarded, since the partition
    went to another worker, which reads its records again from the last release.
    """

    def __init__(self, table: MutableMapping[bytes, bytes]) -> None:
        self.table = table
        self.partition: int | None = None
        self.owned: Collection[int] | None = None  # None: every partition
        # key → (partition, value); None as the value is a deletion.
        self._held: dict[bytes, tuple[int | None, bytes | None]] = {}

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._held:
            value = self._held[key][1]
            if value is None:
                raise KeyError(key)
            return value
        return self.table[key]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._hold(key, value)

    def __delitem__(self, key: bytes) -> None:
        if key not in self:
            raise KeyError(key)
        self._hold(key, None)

    def __iter__(self) -> Iterator[bytes]:
        held = self._held
        yield from (key for key in self.table if key not in held)
        yield from (key for key, (_, value) in held.items() if value is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def holds(self, partition: int | None) -> bool:
        """Whether writes of ``partition`` are held."""
        return any(p == partition for p, _ in self._held.values())

    def release(self, partition: int | None) -> None:
        """Write the held writes of ``partition`` to the table, in the order they were made."""
        for key, (p, value) in list(self._held.items()):
            if p != partition:
                continue
            del self._held[key]
            if value is not None:
                self.table[key] = value
            elif key in self.table:
                del self.table[key]

    def discard(self, keep: Collection[int]) -> None:
        """Forget the held writes of every partition not in ``keep``."""
        self._held = {k: (p, v) for k, (p, v) in self._held.items() if p in keep}

    def _hold(self, key: bytes, value: bytes | None) -> None:
        if self.owned is None or self.partition in self.owned:
            self._held.pop(key, None)  # a key keeps the place of its latest write
            self._held[key] = (self.partition, value)


class Tables:
    """Typed access to the three tables, with their writes held until released."""

    def __init__(
        self,
        files: MutableMapping[bytes, bytes],
        runs: MutableMapping[bytes, bytes],
        offsets: MutableMapping[bytes, bytes],
        *,
        release_every: int = 1,
    ) -> None:
        self.files = HeldTable(files)
        self.runs = HeldTable(runs)
        self.offsets = HeldTable(offsets)
        self._release_every = release_every
        self._handled: Counter[int | None] = Counter()

    @classmethod
    def create(cls, app: faust.App, *, release_every: int = 1) -> Tables:
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
            release_every=release_every,
        )

    @property
    def _held(self) -> tuple[HeldTable, HeldTable, HeldTable]:
        return self.files, self.runs, self.offsets  # state first, offsets last

    def handling(self, partition: int) -> None:
        """Writes from now on belong to ``partition`` (the record being handled is from it)."""
        for table in self._held:
            table.partition = partition

    def settle(self, partition: int) -> None:
        """After a record of ``partition``: release its writes if a run changed, or if due.

        Must be called while that record is the current event (Faust writes a table's
        changelog in the partition of the current event).
        """
        self._handled[partition] += 1
        if self.runs.holds(partition) or self._handled[partition] >= self._release_every:
            for table in self._held:
                table.release(partition)
            self._handled[partition] = 0

    def own(self, partitions: Collection[int]) -> None:
        """Keep only the partitions assigned now; writes held for the others are forgotten."""
        owned = frozenset(partitions)
        for table in self._held:
            table.discard(owned)
            table.owned = owned
        for partition in [p for p in self._handled if p not in owned]:
            del self._handled[partition]

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
