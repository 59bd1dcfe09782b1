"""The aggregating agent without a broker: the tables' partition around each partial, the
guard's verdicts, and the timers' decisions."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection

import pytest
from prometheus_client import CollectorRegistry

from quax_aggregator.agents import AggregatorAgent
from quax_aggregator.metrics import AggregatorMetrics, RunSeries
from quaxfaust.testing import TP, FakeConsumer, events
from quaxspec.deadletter import Source
from quaxspec.offsets import OffsetGuard, OffsetLedger

PARTIALS = "t.quax.partials"


class _World:
    """The agent's collaborators, recording what they are asked in one journal."""

    def __init__(self) -> None:
        self.journal: list[tuple[object, ...]] = []
        self.upstream_idle = True
        self.paused = -1.0

    # tables
    def handling(self, partition: int) -> None:
        self.journal.append(("handling", partition))

    def settle(self, partition: int) -> None:
        self.journal.append(("settle", partition))

    def own(self, partitions: Collection[int]) -> None:
        self.journal.append(("own", sorted(partitions)))

    # handler
    async def handle(self, key: bytes | None, value: bytes | None, source: Source) -> None:
        self.journal.append(("handle", value, source.partition, source.offset))

    # stalled files
    async def tick(self, *, upstream_idle: bool) -> list[object]:
        self.journal.append(("tick", upstream_idle))
        return []

    # upstream
    async def idle(self, own_lag: Callable[[], Awaitable[dict[int, int]]]) -> tuple[bool, str]:
        self.journal.append(("lag", await own_lag()))
        return self.upstream_idle, ""

    async def close(self) -> None:
        self.journal.append(("close",))

    # the timeouts-paused gauge
    def set(self, value: float) -> None:
        self.paused = value


def _agent(world: _World, consumer: FakeConsumer) -> tuple[AggregatorAgent, RunSeries]:
    guard = OffsetGuard(lambda: consumer, OffsetLedger({}), topic=PARTIALS)
    metrics = AggregatorMetrics(registry=CollectorRegistry())
    series = RunSeries(metrics, idle_seconds=0.0)
    agent = AggregatorAgent(
        guard=guard, tables=world, handler=world, stalled=world, upstream=world,  # type: ignore[arg-type]
        run_series=series, timeouts_paused=world,
    )  # fmt: skip
    return agent, series


@pytest.mark.asyncio
async def test_each_partial_is_handled_between_its_partition_and_its_settling() -> None:
    world = _World()
    consumer = FakeConsumer([TP(PARTIALS, 0), TP(PARTIALS, 1)])
    agent, _ = _agent(world, consumer)
    await agent.consume(events(PARTIALS, [(0, 0, b"a"), (1, 0, b"b"), (0, 2, b"skipped")]))
    assert world.journal == [
        ("handling", 0), ("handle", b"a", 0, 0), ("settle", 0),
        ("handling", 1), ("handle", b"b", 1, 0), ("settle", 1),
        ("handling", 0),  # offset 1 was skipped: the consumer goes back, nothing is merged
    ]  # fmt: skip
    assert consumer.seeks == [(TP(PARTIALS, 0), 1)]


@pytest.mark.asyncio
async def test_stalled_files_close_only_while_nothing_may_be_upstream() -> None:
    world = _World()
    agent, _ = _agent(world, FakeConsumer([TP(PARTIALS, 0)], end=10))
    await agent.consume(events(PARTIALS, [(0, 0, b"a")]))
    world.journal.clear()
    await agent.close_stalled()
    assert world.journal == [("lag", {0: 9}), ("tick", True)]
    assert world.paused == 0
    world.upstream_idle = False
    await agent.close_stalled()
    assert world.journal[-1] == ("tick", False)
    assert world.paused == 1


@pytest.mark.asyncio
async def test_assignment_and_idle_runs() -> None:
    world = _World()
    agent, series = _agent(world, FakeConsumer([]))
    agent.assigned([TP(PARTIALS, 2), TP("t.quax.raw", 0), TP(PARTIALS, 0)])
    assert world.journal == [("own", [0, 2])]
    series.set("run-a", best_sigma=1.0, radiometer=1.0, files=3, now=time.monotonic() - 1)
    await agent.forget_idle_runs()
    assert series.forget_idle(time.monotonic()) == []  # already forgotten by the timer
