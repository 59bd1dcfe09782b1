"""Which record of a topic partition comes next, so that a consumer can see a skipped one.

Kafka gives the records of a partition consecutive offsets (our topics are neither compacted
nor written in transactions). A consumer that remembers the next offset it expects can
therefore tell when its client library hands it a record from further on: something was
skipped, and it must read again from the expected offset. Faust 0.15 can lose a record it
had fetched around a rebalance (it clears its agents' buffers when table recovery ends,
and acknowledges records it drops as stale); this is how the services notice and recover.

The ledger keeps its entries in any mutable mapping: a plain dict in a stateless worker, a
changelogged table in the aggregator (so the expectation survives a restart together with
the state it describes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any, Protocol

import structlog

__all__ = ["Consumer", "LagGauge", "OffsetGuard", "OffsetLedger", "Record", "consumer_lag"]

log = structlog.get_logger("quax.offsets")


class OffsetLedger:
    """The next offset expected in each partition of one topic."""

    def __init__(self, store: MutableMapping[bytes, bytes]) -> None:
        self._store = store

    @staticmethod
    def key(partition: int) -> bytes:
        """The store key of a partition."""
        return str(partition).encode()

    def expected(self, partition: int) -> int | None:
        """The offset the next record of ``partition`` should have; None before the first."""
        value = self._store.get(self.key(partition))
        return None if value is None else int.from_bytes(value, "big")

    def skipped_to(self, partition: int, offset: int) -> int | None:
        """If ``offset`` lies beyond the expected one, the offset to read again from."""
        expected = self.expected(partition)
        return expected if expected is not None and offset > expected else None

    def advance(self, partition: int, offset: int) -> None:
        """Record that the record at ``offset`` was handled (a redelivery never moves back)."""
        expected = self.expected(partition)
        if expected is None or offset + 1 > expected:
            self._store[self.key(partition)] = (offset + 1).to_bytes(8, "big")

    def accept_loss(self, partition: int, resume_at: int) -> None:
        """Give up on the records before ``resume_at`` (they are no longer in the topic)."""
        self._store[self.key(partition)] = resume_at.to_bytes(8, "big")

    def forget(self, keep: Iterable[int]) -> None:
        """Drop every partition but those in ``keep``."""
        kept = {self.key(partition) for partition in keep}
        for key in [key for key in self._store if key not in kept]:
            del self._store[key]


def consumer_lag(highwaters: Mapping[int, int], next_offsets: Mapping[int, int]) -> dict[int, int]:
    """Records still to handle per partition: log end offset minus the next offset expected.

    Partitions without a known next offset are left out (nothing handled there yet).
    """
    return {
        partition: max(highwater - next_offsets[partition], 0)
        for partition, highwater in highwaters.items()
        if partition in next_offsets
    }


class Record(Protocol):
    """What the guard reads of a consumed record (a Faust ``Message`` has these)."""

    @property
    def tp(self) -> Any:
        """The record's topic partition, as the consumer names it."""

    @property
    def partition(self) -> int:
        """The record's partition."""

    @property
    def offset(self) -> int:
        """The record's offset."""


class Consumer(Protocol):
    """The consumer calls the guard needs (Faust's ``app.consumer`` has these)."""

    def assignment(self) -> Iterable[Any]:
        """The topic partitions assigned now."""

    def seek(self, tp: Any, offset: int) -> Awaitable[None]:
        """Read ``tp`` again from ``offset``."""

    def earliest_offsets(self, *tps: Any) -> Awaitable[Mapping[Any, int]]:
        """The first offset still held in each partition."""

    def highwaters(self, *tps: Any) -> Awaitable[Mapping[Any, int]]:
        """The log end offset of each partition."""


class LagGauge(Protocol):
    """A gauge labelled by topic and partition (a prometheus_client ``Gauge`` is one)."""

    def labels(self, *, topic: str, partition: str) -> Any:
        """The child for one partition (it has ``set``)."""

    def remove(self, *labelvalues: str) -> None:
        """Forget the child of these label values."""


class OffsetGuard:
    """Let through only the next record of each partition; rewind the consumer on a skip.

    ``admit`` before handling a record, ``handled`` after. A record beyond the expected
    offset is not handled: the consumer is sent back to the expected offset, and records
    already fetched from further on are refused the same way until it arrives. Records the
    topic no longer holds (deleted by retention) cannot be read again: that loss is logged
    as an error, counted, and the guard goes on from the oldest record still there.

    ``consumer`` is called when needed (Faust creates its consumer when the worker starts).
    """

    def __init__(
        self,
        consumer: Callable[[], Consumer],
        ledger: OffsetLedger,
        *,
        topic: str,
        on_rewind: Callable[[], None] = lambda: None,
        on_loss: Callable[[int], None] = lambda records: None,
    ) -> None:
        self._consumer = consumer
        self._ledger = ledger
        self.topic = topic
        self._on_rewind = on_rewind
        self._on_loss = on_loss
        self._rewinding: dict[int, int] = {}
        self._reported: set[str] = set()

    async def admit(self, record: Record) -> bool:
        """Whether ``record`` is the one to handle now (else the consumer was rewound)."""
        expected = self._ledger.skipped_to(record.partition, record.offset)
        if expected is None:
            return True
        earliest = (await self._consumer().earliest_offsets(record.tp))[record.tp]
        if expected < earliest:
            log.error(
                "Records were deleted by retention before they were handled.",
                topic=self.topic,
                partition=record.partition,
                first_lost=expected,
                records_lost=earliest - expected,
            )
            self._on_loss(earliest - expected)
            self._ledger.accept_loss(record.partition, earliest)
            expected = earliest
            if record.offset == expected:
                return True
        if self._rewinding.get(record.partition) != expected:
            self._rewinding[record.partition] = expected
            self._on_rewind()
            log.warning(
                "A record was skipped by the consumer; reading the partition again from it.",
                topic=self.topic,
                partition=record.partition,
                expected=expected,
                received=record.offset,
            )
        await self._consumer().seek(record.tp, expected)
        return False

    def handled(self, record: Record) -> None:
        """Record that ``record`` was handled."""
        self._ledger.advance(record.partition, record.offset)
        self._rewinding.pop(record.partition, None)

    def forget(self, keep: Iterable[int]) -> None:
        """Drop the expectations of partitions not in ``keep`` (for an in-memory ledger)."""
        self._ledger.forget(keep)

    async def lag(self) -> dict[int, int]:
        """Records still to handle in each assigned partition of the topic."""
        tps = [tp for tp in self._consumer().assignment() if tp.topic == self.topic]
        if not tps:
            return {}
        highwaters = await self._consumer().highwaters(*tps)
        ends = {tp.partition: offset for tp, offset in highwaters.items()}
        expected = {p: e for p in ends if (e := self._ledger.expected(p)) is not None}
        return consumer_lag(ends, expected)

    async def report_lag(self, gauge: LagGauge) -> None:
        """Set ``gauge`` to the lag of each assigned partition; drop the others."""
        try:
            measured = await self.lag()
        except Exception as error:  # e.g. partitions revoked while asking: try next time
            log.info("Consumer lag not measured this time.", topic=self.topic, error=repr(error))
            return
        lag = {str(partition): records for partition, records in measured.items()}
        for partition in self._reported - lag.keys():
            gauge.remove(self.topic, partition)
        for partition, records in lag.items():
            gauge.labels(topic=self.topic, partition=partition).set(records)
        self._reported = set(lag)
