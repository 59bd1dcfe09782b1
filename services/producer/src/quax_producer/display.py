"""A live progress line on stderr (files, MB, MB/s, lag), drawn from the metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from typing import TextIO

from rich.console import Console
from rich.progress import (
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from quax_producer.metrics import Metrics

__all__ = ["show_progress"]

_REFRESH_SECONDS = 0.5


@contextlib.asynccontextmanager
async def show_progress(metrics: Metrics, *, total_files: int | None) -> AsyncIterator[None]:
    """Show what the metrics say while the body runs.

    Reading the metrics keeps the display out of the stream's code: the stream counts,
    this draws.
    """
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.fields[files]} files"),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("lag {task.fields[lag]:.1f} s"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    task = progress.add_task("sending", total=None, files=_files(metrics, total_files), lag=0.0)

    def update() -> None:
        progress.update(
            task,
            completed=metrics.value("quax_producer_bytes_total"),
            files=_files(metrics, total_files),
            lag=metrics.value("quax_producer_schedule_lag_seconds"),
        )

    async def refresh() -> None:
        while True:
            update()
            await asyncio.sleep(_REFRESH_SECONDS)

    original_stderr = sys.stderr
    with progress, _logs_to(sys.stderr, instead_of=original_stderr):
        updating = asyncio.create_task(refresh())
        try:
            yield
        finally:
            updating.cancel()
            await asyncio.gather(updating, return_exceptions=True)
            update()  # the last state, not the one of up to half a second ago


def _files(metrics: Metrics, total: int | None) -> str:
    done = int(metrics.value("quax_producer_files_total"))
    return f"{done}" if total is None else f"{done}/{total}"


@contextlib.contextmanager
def _logs_to(stream: TextIO, *, instead_of: TextIO) -> Iterator[None]:
    """Point the root log handlers that write to ``instead_of`` at ``stream`` for a while.

    In a terminal rich replaces sys.stderr by a proxy that prints above the live line, but
    log handlers keep the stream they were made with and would write across the line.
    """
    handlers = [
        handler
        for handler in logging.getLogger().handlers
        if isinstance(handler, logging.StreamHandler) and handler.stream is instead_of
    ]
    if stream is instead_of:
        handlers = []
    for handler in handlers:
        handler.setStream(stream)
    try:
        yield
    finally:
        for handler in handlers:
            handler.setStream(instead_of)
