"""The FFT agent without a broker: records in, the guard's verdicts, the handler's calls."""

from __future__ import annotations

import pytest

from quax_fft_worker.agents import FftAgent
from quaxfaust.testing import TP, FakeConsumer, events
from quaxspec.deadletter import Source
from quaxspec.offsets import OffsetGuard, OffsetLedger

RAW = "t.quax.raw"


class _Handler:
    def __init__(self) -> None:
        self.calls: list[tuple[bytes | None, bytes | None, Source]] = []

    async def handle(self, key: bytes | None, value: bytes | None, source: Source) -> None:
        self.calls.append((key, value, source))


class _Gauge:
    value = -1.0

    def set(self, value: float) -> None:
        self.value = value


def _agent(consumer: FakeConsumer) -> tuple[FftAgent, _Handler, _Gauge, list[str]]:
    counts: list[str] = []
    guard = OffsetGuard(
        lambda: consumer, OffsetLedger({}), topic=RAW, on_rewind=lambda: counts.append("rewind")
    )
    handler, gauge = _Handler(), _Gauge()
    return FftAgent(guard=guard, handler=handler, partitions=gauge), handler, gauge, counts


@pytest.mark.asyncio
async def test_every_record_reaches_the_handler_once_in_order_with_its_source() -> None:
    agent, handler, _, _ = _agent(FakeConsumer([TP(RAW, 0), TP(RAW, 1)]))
    records = [(0, 0, b"a"), (1, 0, b"b"), (0, 1, b"c"), (0, 1, b"c")]  # a redelivery
    await agent.consume(events(RAW, records))
    assert handler.calls == [
        (b"run", b"a", Source(RAW, 0, 0)),
        (b"run", b"b", Source(RAW, 1, 0)),
        (b"run", b"c", Source(RAW, 0, 1)),
        (b"run", b"c", Source(RAW, 0, 1)),  # the handler's own idempotence deals with it
    ]


@pytest.mark.asyncio
async def test_a_skipped_record_sends_the_consumer_back_and_nothing_after_it_is_handled() -> None:
    consumer = FakeConsumer([TP(RAW, 0)])
    agent, handler, _, counts = _agent(consumer)
    # Offset 2 is skipped: 3 and 4 are refused until 2 comes again.
    await agent.consume(events(RAW, [(0, 0, b"0"), (0, 1, b"1"), (0, 3, b"3"), (0, 4, b"4"),
                                     (0, 2, b"2"), (0, 3, b"3"), (0, 4, b"4")]))  # fmt: skip
    assert [value for _, value, _ in handler.calls] == [b"0", b"1", b"2", b"3", b"4"]
    assert consumer.seeks == [(TP(RAW, 0), 2), (TP(RAW, 0), 2)]
    assert counts == ["rewind"]  # one skip, reported once


@pytest.mark.asyncio
async def test_the_guard_forgets_partitions_no_longer_assigned() -> None:
    consumer = FakeConsumer([TP(RAW, 0), TP(RAW, 1)])
    agent, handler, gauge, counts = _agent(consumer)
    await agent.consume(events(RAW, [(0, 0, b"0"), (1, 0, b"0")]))
    agent.assigned([TP(RAW, 1), TP("t.quax.partials", 0)])
    assert gauge.value == 1
    # Partition 0 went to another worker, which moved it on; when it comes back, whatever
    # offset it comes back at is not a skip.
    await agent.consume(events(RAW, [(0, 40, b"40"), (1, 2, b"2")]))
    assert [(s.partition, s.offset) for _, _, s in handler.calls[2:]] == [(0, 40)]
    assert consumer.seeks == [(TP(RAW, 1), 1)]
    assert counts == ["rewind"]
