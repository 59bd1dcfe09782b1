"""Graceful shutdown: SIGINT/SIGTERM stop taking new files; a second one abandons the current."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from typing import TypeVar

import structlog

__all__ = ["Shutdown", "until_stopped"]

_log = structlog.get_logger(__name__)
_T = TypeVar("_T")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Shutdown:
    """Signal handlers of one task: the first signal sets ``stop``, the second cancels the task.

    Stopping after the current file keeps files whole (the aggregator would otherwise wait
    for slices that never come); the second signal is for when that is too slow.
    """

    def __init__(self, *, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
        self._stop = stop
        self._task = task
        self._loop = asyncio.get_running_loop()

    def __enter__(self) -> Shutdown:
        for sig in _SIGNALS:
            self._loop.add_signal_handler(sig, self._on_signal, sig)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig in _SIGNALS:
            self._loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if not self._stop.is_set():
            _log.info("Stopping after the current file.", signal=sig.name)
            self._stop.set()
        else:
            _log.warning("Stopping now; the current file stays incomplete.", signal=sig.name)
            self._task.cancel()


async def until_stopped(items: AsyncIterator[_T], stop: asyncio.Event) -> AsyncIterator[_T]:
    """The items of ``items`` until ``stop`` is set, even while waiting for the next one."""
    stopping = asyncio.ensure_future(stop.wait())
    following: asyncio.Future[_T] | None = None
    try:
        while not stop.is_set():
            following = asyncio.ensure_future(anext(items))
            await asyncio.wait({following, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                return
            try:
                item = following.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        stopping.cancel()
        if following is not None and not following.done():
            # Cancelling the pending step also ends the source (its finally blocks run),
            # so that it is not left running when the caller closes it.
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
