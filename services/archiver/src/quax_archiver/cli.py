"""Command line of the archiver: ``quax-archiver run``."""

from __future__ import annotations

import asyncio
import signal

import typer
from prometheus_client import start_http_server

from quax_archiver.metrics import ArchiverMetrics
from quax_archiver.service import Archiver
from quax_archiver.settings import ArchiverSettings
from quaxspec.logs import configure_logging

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.callback()
def main() -> None:
    """Every file spectrum and each run's latest state, as Parquet."""


@app.command()
def run() -> None:
    """Archive until SIGINT/SIGTERM, which flush what is buffered (QUAX_ARCHIVER_* settings)."""
    settings = ArchiverSettings()
    configure_logging(settings.logging, service="archiver")
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    asyncio.run(_archive(settings))


async def _archive(settings: ArchiverSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await Archiver(settings, ArchiverMetrics()).run(stop)
