"""When an open file has waited long enough for its missing chunks to be closed without them.

A file is closed incomplete after ``timeout`` seconds of *silence*: time during which its
chunks could have come and did not. Time during which the pipeline upstream is behind (the
FFT workers have unread raw chunks, the aggregator has unread partials) or cannot be asked
(the broker is away) is not silence: the chunks may be waiting there. So a broker restart,
a stalled or rebalancing worker, or a backlog closes nothing early.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["SilenceClock"]

_K = TypeVar("_K", bound=Hashable)


@dataclass(slots=True)
class _Silence:
    updated: float
    seconds: float = 0.0
    requested: bool = False


class SilenceClock(Generic[_K]):
    """Counts each open file's silence, tick by tick; says which files are due to be closed."""

    def __init__(self, *, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self._timeout = timeout
        self._files: dict[_K, _Silence] = {}
        self._last_tick: float | None = None

    def tick(
        self, now: float, *, upstream_idle: bool, files: Iterable[tuple[_K, float]]
    ) -> list[_K]:
        """Advance to ``now``; return the open files to close (each once until it changes).

        ``files`` are the open files as (key, time of their last new chunk). The time since
        the previous tick counts as silence only if ``upstream_idle``.
        """
        elapsed = 0.0 if self._last_tick is None else max(0.0, now - self._last_tick)
        self._last_tick = now
        seen: dict[_K, _Silence] = {}
        due: list[_K] = []
        for key, updated in files:
            silence = self._files.get(key)
            if silence is None or silence.updated != updated:
                silence = _Silence(updated=updated)  # new, or a chunk came: silent from now
            elif upstream_idle:
                silence.seconds += elapsed
            seen[key] = silence
            if silence.seconds > self._timeout and not silence.requested:
                silence.requested = True
                due.append(key)
        self._files = seen
        return due

    def silence(self, key: _K) -> float:
        """Seconds of silence counted for an open file (0 if unknown)."""
        silence = self._files.get(key)
        return 0.0 if silence is None else silence.seconds
