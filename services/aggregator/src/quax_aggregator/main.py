"""Start the aggregator: settings, logging, metrics, then the Faust worker until stopped."""

from __future__ import annotations

import faust
from prometheus_client import start_http_server

from quax_aggregator.agents import register_agents
from quax_aggregator.app import create_app
from quax_aggregator.metrics import AggregatorMetrics
from quax_aggregator.settings import AggregatorSettings
from quax_aggregator.tables import Tables
from quaxspec.logs import configure_logging

__all__ = ["run_aggregator"]


def run_aggregator(settings: AggregatorSettings) -> None:
    """Run until SIGINT/SIGTERM; tables are restored from their changelogs at start."""
    configure_logging(settings.logging, service="aggregator")
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    app = create_app(settings)
    tables = Tables.create(app, release_every=settings.release_every)
    register_agents(app, settings, tables, AggregatorMetrics())
    worker = faust.Worker(
        app,
        loglevel=settings.logging.level,
        override_logging=False,
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()
