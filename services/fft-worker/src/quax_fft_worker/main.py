"""Start an FFT worker: settings, logging, metrics endpoint, then the Faust worker until stopped."""

from __future__ import annotations

import faust
from prometheus_client import start_http_server

from quax_fft_worker.agents import register_agents
from quax_fft_worker.app import create_app
from quax_fft_worker.metrics import WorkerMetrics
from quax_fft_worker.settings import FftWorkerSettings
from quaxspec.logs import configure_logging

__all__ = ["run_worker"]


def run_worker(settings: FftWorkerSettings) -> None:
    """Run until SIGINT/SIGTERM, then stop cleanly (offsets of processed chunks committed)."""
    configure_logging(settings.logging, service="fft-worker")
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    app = create_app(settings)
    register_agents(app, settings, WorkerMetrics())
    worker = faust.Worker(
        app,
        loglevel=settings.logging.level,
        override_logging=False,
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()
