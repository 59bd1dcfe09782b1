"""The FFT agent: raw chunks admitted by the offset guard go to the chunk handler."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Any, Protocol

import faust
from faust.types import TP

from quax_fft_worker.handling import ChunkHandler
from quaxspec.deadletter import Source
from quaxspec.offsets import OffsetGuard

__all__ = ["FftAgent"]


class _Gauge(Protocol):
    def set(self, value: float) -> None: ...


class FftAgent:
    """One agent per worker (concurrency 1: scale with replicas, one per partition at most).

    Its guard, handler and partition gauge are passed in, so that the tests drive
    :meth:`consume` and :meth:`assigned` with records of their own and no broker.
    """

    def __init__(self, *, guard: OffsetGuard, handler: ChunkHandler, partitions: _Gauge) -> None:
        self._guard = guard
        self._handler = handler
        self._partitions = partitions

    def attach(self, app: faust.App, raw: faust.TopicT) -> None:
        """Register the agent on ``raw`` and follow the partitions assigned."""

        @app.agent(raw, concurrency=1, name="transform")
        async def transform(stream: faust.StreamT[bytes]) -> None:
            await self.consume(stream.events())

        @app.on_partitions_assigned.connect
        async def keep_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            self.assigned(args[0])

    async def consume(self, events: AsyncIterable[faust.EventT[bytes]]) -> None:
        """Hand every admitted record to the handler, then mark it handled."""
        async for event in events:
            message = event.message
            if await self._guard.admit(message):
                source = Source(message.topic, message.partition, message.offset)
                await self._handler.handle(event.key, event.value, source)
                self._guard.handled(message)

    def assigned(self, assigned: Iterable[TP]) -> None:
        """The partitions of the raw topic assigned now: the guard keeps only those (the
        ledger is in memory, and another worker may have moved the others on)."""
        mine = [tp.partition for tp in assigned if tp.topic == self._guard.topic]
        self._guard.forget(mine)
        self._partitions.set(len(mine))
