"""The pacer's schedule, with a fake clock: drift-free, lag reported, never waits when unpaced."""

from __future__ import annotations

import random

import pytest
import structlog

from quax_producer.pacing import Pacer


class FakeClock:
    """A clock that only moves when told to (sleeping moves it to the wake-up time)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _pacer(clock: FakeClock, rate: float | None, **kwargs) -> Pacer:
    return Pacer(bytes_per_second=rate, clock=clock, sleep=clock.sleep, **kwargs)


async def test_due_times_come_from_cumulative_bytes_so_jitter_does_not_drift():
    clock, rng = FakeClock(), random.Random(1)
    rate, chunk = 16e6, 786_432  # 16 MB/s, 768 KiB chunks: one due every 49.152 ms
    pacer = _pacer(clock, rate)
    period = chunk / rate

    for k in range(100):
        await pacer.pace(chunk)
        assert clock.now == pytest.approx(1000.0 + k * period, abs=1e-9)
        assert pacer.lag == 0.0
        clock.now += rng.uniform(0.2, 0.95) * period  # sending takes a jittery while

    # The 101st chunk is due exactly 100 periods after the start, whatever the jitter was:
    # sleeping a fixed period after each send would have ended ~60 periods later.
    assert pacer.next_due() == 1000.0 + 100 * chunk / rate
    await pacer.pace(chunk)
    assert clock.now == pytest.approx(1000.0 + 100 * chunk / rate, abs=1e-9)
    assert pacer.sent_bytes == 101 * chunk


async def test_late_sends_are_caught_up_and_reported_as_lag():
    clock, lags = FakeClock(), []
    pacer = _pacer(clock, 1000.0, on_lag=lags.append)

    await pacer.pace(1000)  # due at 1000 s, sent at once
    clock.now += 3.5  # a slow send: the next chunk was due 2.5 s ago
    await pacer.pace(1000)
    await pacer.pace(1000)  # due at 1002 s, now is 1003.5 s: still late, no wait

    assert clock.sleeps == []
    assert lags == [0.0, 2.5, 1.5]
    assert pacer.lag == 1.5
    await pacer.pace(1000)  # due at 1003 s: late by 0.5 s
    await pacer.pace(1000)  # due at 1004 s: waits 0.5 s, back on schedule
    assert clock.sleeps == [pytest.approx(0.5)]
    assert lags[-1] == 0.0


async def test_falling_behind_by_more_than_a_period_warns_at_most_every_ten_seconds():
    clock = FakeClock()
    pacer = _pacer(clock, 100.0, warn_after_seconds=1.0, warn_interval_seconds=10.0)

    with structlog.testing.capture_logs() as logs:
        await pacer.pace(100)
        for _ in range(30):
            clock.now += 2.0  # every send takes 2 s for a 1 s budget
            await pacer.pace(100)

    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    # Behind by more than 1 s from t = 4 s on (29 late sends), warned once per 10 s of clock.
    assert [round(w["lag_seconds"]) for w in warnings] == [2, 7, 12, 17, 22, 27]


async def test_as_fast_as_possible_never_waits():
    clock = FakeClock()
    pacer = _pacer(clock, None)

    for _ in range(1000):
        await pacer.pace(10**6)

    assert clock.sleeps == []
    assert pacer.lag == 0.0
    assert pacer.delay() == 0.0


def test_a_rate_must_be_positive():
    with pytest.raises(ValueError, match="rate must be positive"):
        Pacer(bytes_per_second=0.0)
