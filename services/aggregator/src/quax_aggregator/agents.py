"""The aggregating agent and its timers: admitted partials go to the partial handler."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, Collection, Iterable
from typing import Any, Protocol

import faust
import structlog
from faust.types import TP

from quax_aggregator.handling import PartialHandler, StalledFiles
from quax_aggregator.metrics import RunSeries
from quax_aggregator.upstream import UpstreamWatch
from quaxspec.deadletter import Source
from quaxspec.offsets import OffsetGuard

__all__ = ["AggregatorAgent"]

log = structlog.get_logger("quax.aggregator")


class _Tables(Protocol):
    def handling(self, partition: int) -> None: ...
    def settle(self, partition: int) -> None: ...
    def own(self, partitions: Collection[int]) -> None: ...


class _Gauge(Protocol):
    def set(self, value: float) -> None: ...


class AggregatorAgent:
    """One agent per aggregator (concurrency 1), a timer that closes stalled files, and one
    that drops the metrics of idle runs.

    Everything it uses is passed in, so that the tests drive :meth:`consume`,
    :meth:`close_stalled` and :meth:`assigned` with records and fakes of their own.
    """

    def __init__(
        self,
        *,
        guard: OffsetGuard,
        tables: _Tables,
        handler: PartialHandler,
        stalled: StalledFiles,
        upstream: UpstreamWatch,
        run_series: RunSeries,
        timeouts_paused: _Gauge,
    ) -> None:
        self._guard = guard
        self._tables = tables
        self._handler = handler
        self._stalled = stalled
        self._upstream = upstream
        self._run_series = run_series
        self._timeouts_paused = timeouts_paused

    def attach(self, app: faust.App, partials: faust.TopicT, *, close_check: float) -> None:
        """Register the agent on ``partials``, the timers, and the rebalance and shutdown
        hooks."""

        @app.agent(partials, concurrency=1, name="aggregate")
        async def aggregate(stream: faust.StreamT[bytes]) -> None:
            await self.consume(stream.events())

        app.timer(interval=close_check)(self.close_stalled)
        app.timer(interval=60.0)(self.forget_idle_runs)

        @app.on_partitions_assigned.connect
        async def own(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            self.assigned(args[0])

        @app.on_before_shutdown.connect
        async def close(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            await self._upstream.close()

    async def consume(self, events: AsyncIterable[faust.EventT[bytes]]) -> None:
        """Merge every admitted partial; the tables' writes belong to its partition."""
        async for event in events:
            message = event.message
            self._tables.handling(message.partition)  # the guard writes the ledger too
            if await self._guard.admit(message):
                source = Source(message.topic, message.partition, message.offset)
                await self._handler.handle(event.key, event.value, source)
                self._guard.handled(message)
                self._tables.settle(message.partition)

    async def close_stalled(self) -> None:
        """Close the files silent for the timeout, unless data may still be upstream."""
        idle, _ = await self._upstream.idle(self._guard.lag)
        self._timeouts_paused.set(0 if idle else 1)
        await self._stalled.tick(upstream_idle=idle)

    async def forget_idle_runs(self) -> None:
        """Drop the per-run metric series of runs idle for long."""
        for run_id in self._run_series.forget_idle(time.monotonic()):
            log.info("Removed the metrics of an idle run.", run_id=run_id)

    def assigned(self, assigned: Iterable[TP]) -> None:
        """The partitions assigned now: writes held for a partition that went to another
        aggregator are forgotten (it reads their records again from the last release)."""
        self._tables.own([tp.partition for tp in assigned if tp.topic == self._guard.topic])
