"""Command line of the aggregator: ``quax-aggregator worker``."""

from __future__ import annotations

import typer

from quax_aggregator.main import run_aggregator
from quax_aggregator.settings import AggregatorSettings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.callback()
def main() -> None:
    """Per-file and per-run spectra from partial statistics."""


@app.command()
def worker() -> None:
    """Run the Faust aggregator (settings from QUAX_AGGREGATOR_* and QUAX_KAFKA_* variables)."""
    run_aggregator(AggregatorSettings())
