"""Start a Faust service: logging, the metrics endpoint, the app, then its worker until stopped."""

from __future__ import annotations

from collections.abc import Callable

import faust
from prometheus_client import start_http_server

from quaxfaust.settings import FaustServiceSettings
from quaxspec.logs import configure_logging

__all__ = ["run_worker"]


def run_worker(
    settings: FaustServiceSettings, *, service: str, build: Callable[[], faust.App]
) -> None:
    """Run the app ``build`` makes until SIGINT/SIGTERM, then stop cleanly (offsets of the
    records handled committed)."""
    configure_logging(settings.logging, service=service)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    worker = faust.Worker(
        build(),
        loglevel=settings.logging.level,
        override_logging=False,
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()
