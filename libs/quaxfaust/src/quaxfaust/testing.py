"""Stand-ins for what Faust hands an agent, so that agents run in tests without a broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["FakeConsumer", "FakeEvent", "FakeMessage", "TP", "events"]


class TP(NamedTuple):
    """A topic partition, as Faust's ``TP``."""

    topic: str
    partition: int


@dataclass(frozen=True)
class FakeMessage:
    """What an agent and the offset guard read of a consumed record."""

    topic: str
    partition: int
    offset: int

    @property
    def tp(self) -> TP:
        """Its topic partition."""
        return TP(self.topic, self.partition)


@dataclass(frozen=True)
class FakeEvent:
    """A record as a Faust stream's ``events()`` yields it."""

    message: FakeMessage
    key: bytes | None
    value: bytes | None


@dataclass
class FakeConsumer:
    """A consumer's offset bookkeeping: where it was sent back to, what it holds."""

    assigned: list[TP]
    earliest: int = 0
    end: int = 1000
    seeks: list[tuple[TP, int]] = field(default_factory=list)

    def assignment(self) -> list[TP]:
        """The partitions assigned."""
        return self.assigned

    async def seek(self, tp: Any, offset: int) -> None:
        """Send the consumer back (recorded)."""
        self.seeks.append((tp, offset))

    async def earliest_offsets(self, *tps: Any) -> dict[Any, int]:
        """The oldest offset each partition still holds."""
        return dict.fromkeys(tps, self.earliest)

    async def highwaters(self, *tps: Any) -> dict[Any, int]:
        """The end offset of each partition."""
        return dict.fromkeys(tps, self.end)


async def events(
    topic: str, records: Iterable[tuple[int, int, bytes | None]]
) -> AsyncIterator[FakeEvent]:
    """Events of ``topic`` from (partition, offset, value) triples, keyed b"run"."""
    for partition, offset, value in records:
        yield FakeEvent(FakeMessage(topic, partition, offset), b"run", value)
