"""A drift-free send schedule: each chunk is due when the bytes before it are, at a fixed rate."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

import structlog

__all__ = ["Pacer"]

_log = structlog.get_logger(__name__)


class Pacer:
    """Waits until each chunk is due and says how far behind schedule the stream is.

    Chunk k is due at ``start + bytes_before_k / rate``. The due time comes from the start
    and the cumulative bytes, never from "sleep after each send": late sends then do not
    push every later chunk back (no drift), and a stream that fell behind catches up.
    ``bytes_per_second=None`` sends as fast as possible and never waits.
    """

    def __init__(
        self,
        *,
        bytes_per_second: float | None,
        warn_after_seconds: float = math.inf,
        warn_interval_seconds: float = 10.0,
        on_lag: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if bytes_per_second is not None and not bytes_per_second > 0:
            raise ValueError(f"rate must be positive, got {bytes_per_second} B/s")
        self._rate = bytes_per_second
        self._warn_after = warn_after_seconds
        self._warn_interval = warn_interval_seconds
        self._on_lag = on_lag
        self._clock = clock
        self._sleep = sleep
        self._start: float | None = None
        self._sent = 0
        self._lag = 0.0
        self._last_warning = -math.inf

    @property
    def lag(self) -> float:
        """Seconds the last chunk was behind its due time (0 when on schedule)."""
        return self._lag

    @property
    def sent_bytes(self) -> int:
        """Bytes counted so far."""
        return self._sent

    def duration(self, nbytes: int) -> float:
        """Seconds the schedule gives to ``nbytes`` (0 when unpaced)."""
        return 0.0 if self._rate is None else nbytes / self._rate

    def next_due(self) -> float:
        """Clock time at which the next chunk is due (now, before the first or without pacing)."""
        if self._rate is None or self._start is None:
            return self._clock()
        return self._start + self._sent / self._rate

    def delay(self) -> float:
        """Seconds until the next chunk is due (negative when the stream is late)."""
        return self.next_due() - self._clock()

    async def pace(self, nbytes: int) -> None:
        """Wait until a chunk of ``nbytes`` is due, then count it as sent."""
        now = self._clock()
        if self._start is None:
            self._start = now
        due = self.next_due()
        if due > now:
            await self._sleep(due - now)
        self._update_lag(max(0.0, now - due))
        self._sent += nbytes

    def _update_lag(self, lag: float) -> None:
        self._lag = lag
        if self._on_lag is not None:
            self._on_lag(lag)
        now = self._clock()
        if lag > self._warn_after and now - self._last_warning >= self._warn_interval:
            self._last_warning = now
            _log.warning(
                "The stream is behind schedule by more than one pair's period.",
                lag_seconds=round(lag, 3),
                period_seconds=round(self._warn_after, 3),
            )
