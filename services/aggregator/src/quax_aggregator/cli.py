"""Command line of the aggregator: ``quax-aggregator worker``."""

from __future__ import annotations

import typer

from quax_aggregator.app import build_app
from quax_aggregator.settings import AggregatorSettings
from quaxfaust.worker import run_worker

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.callback()
def main() -> None:
    """Per-file and per-run spectra from partial statistics."""


@app.command()
def worker() -> None:
    """Run the Faust aggregator (settings from QUAX_AGGREGATOR_* and QUAX_KAFKA_* variables);
    its tables are restored from their changelogs at start."""
    settings = AggregatorSettings()
    run_worker(settings, service="aggregator", build=lambda: build_app(settings))
