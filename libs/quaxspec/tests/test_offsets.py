"""Tests for quaxspec.offsets: telling a skipped record from a redelivered one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Gauge

from quaxspec.offsets import OffsetGuard, OffsetLedger, consumer_lag


def test_the_first_record_of_a_partition_is_never_a_skip():
    ledger = OffsetLedger({})
    assert ledger.expected(3) is None
    assert ledger.skipped_to(3, 41) is None


def test_a_record_past_the_expected_one_asks_to_read_again_from_it():
    ledger = OffsetLedger({})
    for offset in range(20, 30):
        assert ledger.skipped_to(0, offset) is None
        ledger.advance(0, offset)
    assert ledger.expected(0) == 30
    assert ledger.skipped_to(0, 31) == 30
    assert ledger.skipped_to(0, 30) is None


def test_redeliveries_are_not_skips_and_never_move_the_expectation_back():
    ledger = OffsetLedger({})
    for offset in range(10):
        ledger.advance(0, offset)
    for offset in range(4, 10):  # delivered again after a restart from an older commit
        assert ledger.skipped_to(0, offset) is None
        ledger.advance(0, offset)
    assert ledger.expected(0) == 10


def test_partitions_are_independent_and_the_store_holds_the_state():
    store: dict[bytes, bytes] = {}
    ledger = OffsetLedger(store)
    ledger.advance(0, 5)
    ledger.advance(2, 99)
    again = OffsetLedger(store)  # as a restarted aggregator reading its restored table
    assert (again.expected(0), again.expected(1), again.expected(2)) == (6, None, 100)


def test_accepting_a_loss_moves_the_expectation_to_where_the_topic_starts():
    ledger = OffsetLedger({})
    ledger.advance(1, 7)
    ledger.accept_loss(1, 500)
    assert ledger.skipped_to(1, 500) is None
    assert ledger.expected(1) == 500


@given(
    st.lists(st.integers(0, 200), min_size=1, max_size=50),
    st.sampled_from([0, 1, 3]),
)
def test_in_any_delivery_order_the_skips_are_exactly_the_gaps(deliveries, partition):
    # Whatever order the consumer sees, a record is reported as a skip exactly when an
    # offset below it and at or above the expectation was never handled.
    ledger = OffsetLedger({})
    handled: set[int] = set()
    for offset in deliveries:
        rewind = ledger.skipped_to(partition, offset)
        if handled:
            expected = max(handled) + 1
            assert rewind == (expected if offset > expected else None)
        else:
            assert rewind is None
        if rewind is None:
            ledger.advance(partition, offset)
            handled.add(offset)


def test_consumer_lag_is_the_distance_to_the_log_end():
    lag = consumer_lag({0: 120, 1: 50, 2: 9}, {0: 100, 1: 50, 3: 4})
    assert lag == {0: 20, 1: 0}


class _Consumer:
    """A consumer's offset bookkeeping, to drive the guard (no broker involved)."""

    def __init__(self, earliest: int = 0, end: int = 1000) -> None:
        self.earliest, self.end = earliest, end
        self.seeks: list[tuple[TP, int]] = []

    def assignment(self) -> list[TP]:
        return [TP("quax.partials", 0), TP("quax.partials", 1), TP("quax.raw", 0)]

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, self.earliest)

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, self.end)


class TP(NamedTuple):
    topic: str
    partition: int


@dataclass(frozen=True)
class _Record:
    partition: int
    offset: int

    @property
    def tp(self) -> TP:
        return TP("quax.partials", self.partition)


def _guard(consumer: _Consumer, counts: dict[str, int]) -> OffsetGuard:
    def rewound() -> None:
        counts["rewinds"] += 1

    def lost(records: int) -> None:
        counts["lost"] += records

    return OffsetGuard(
        lambda: consumer,
        OffsetLedger({}),
        topic="quax.partials",
        on_rewind=rewound,
        on_loss=lost,
    )


async def _deliver(guard: OffsetGuard, offsets: list[int], partition: int = 0) -> list[int]:
    handled = []
    for offset in offsets:
        record = _Record(partition, offset)
        if await guard.admit(record):
            guard.handled(record)
            handled.append(offset)
    return handled


async def test_the_guard_refuses_a_skip_and_rewinds_until_the_missing_record_comes():
    # Offsets 20..29 handled, 30 dropped by the client, 31..33 already fetched: none of
    # them is handled, the consumer is sent back to 30 for each (a seek can be undone by
    # records fetched before it), the rewind is counted once, and after the redelivery
    # everything from 30 on is handled in order.
    consumer, counts = _Consumer(), {"rewinds": 0, "lost": 0}
    guard = _guard(consumer, counts)
    handled = await _deliver(guard, [*range(20, 30), 31, 32, 33, *range(30, 36)])
    assert handled == list(range(20, 36))
    assert consumer.seeks == [(TP("quax.partials", 0), 30)] * 3
    assert counts == {"rewinds": 1, "lost": 0}


async def test_the_guard_lets_redeliveries_through_and_counts_no_rewind():
    consumer, counts = _Consumer(), {"rewinds": 0, "lost": 0}
    guard = _guard(consumer, counts)
    handled = await _deliver(guard, [*range(0, 10), *range(5, 12)])
    assert handled == [*range(0, 10), *range(5, 12)]
    assert consumer.seeks == []
    assert counts["rewinds"] == 0


async def test_records_deleted_by_retention_are_counted_as_lost_and_the_stream_goes_on():
    consumer, counts = _Consumer(earliest=100), {"rewinds": 0, "lost": 0}
    guard = _guard(consumer, counts)
    # 0..9 handled, then the consumer is away long enough for retention to delete 10..99.
    handled = await _deliver(guard, [*range(10), 100, 101])
    assert handled == [*range(10), 100, 101]
    assert counts == {"rewinds": 0, "lost": 90}
    # A record past the oldest one still held is a skip again: rewind to the oldest.
    guard2 = _guard(_Consumer(earliest=100), counts := {"rewinds": 0, "lost": 0})
    assert await _deliver(guard2, [*range(10), 105, *range(100, 106)]) == [
        *range(10),
        *range(100, 106),
    ]
    assert counts == {"rewinds": 1, "lost": 90}


async def test_lag_covers_the_assigned_partitions_of_the_guarded_topic_only():
    consumer, counts = _Consumer(end=50), {"rewinds": 0, "lost": 0}
    guard = _guard(consumer, counts)
    await _deliver(guard, list(range(20)), partition=0)
    assert await guard.lag() == {0: 30}  # partition 1 has nothing handled yet


def test_forgetting_keeps_only_the_partitions_still_held():
    ledger = OffsetLedger({})
    for partition in range(4):
        ledger.advance(partition, 10)
    ledger.forget([1, 3])
    assert [ledger.expected(p) for p in range(4)] == [None, 11, None, 11]


async def test_reported_lag_follows_the_assignment():
    registry = CollectorRegistry()
    gauge = Gauge("lag", "Records behind.", ["topic", "partition"], registry=registry)
    consumer, counts = _Consumer(end=50), {"rewinds": 0, "lost": 0}
    guard = _guard(consumer, counts)
    await _deliver(guard, list(range(20)), partition=0)
    await _deliver(guard, list(range(45)), partition=1)
    await guard.report_lag(gauge)

    def value(partition: str) -> float | None:
        labels = {"topic": "quax.partials", "partition": partition}
        return registry.get_sample_value("lag", labels)

    assert (value("0"), value("1")) == (30, 5)
    consumer.assignment = lambda: [TP("quax.partials", 1)]  # partition 0 revoked
    await guard.report_lag(gauge)
    assert (value("0"), value("1")) == (None, 5)
