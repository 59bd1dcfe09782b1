"""The aggregator's Faust app: its topics, tables, handlers and agent, wired together."""

from __future__ import annotations

import faust

from quax_aggregator.agents import AggregatorAgent
from quax_aggregator.handling import Outputs, PartialHandler, StalledFiles
from quax_aggregator.metrics import AggregatorMetrics, RunSeries
from quax_aggregator.settings import AggregatorSettings
from quax_aggregator.tables import Tables
from quax_aggregator.upstream import UpstreamWatch
from quaxfaust.app import create_app
from quaxfaust.consuming import GuardedInput
from quaxspec.offsets import OffsetLedger
from quaxspec.topics import DEADLETTER, PARTIALS, RUNS, SPECTRA

__all__ = ["build_app"]


def build_app(settings: AggregatorSettings, metrics: AggregatorMetrics | None = None) -> faust.App:
    """A Faust app whose tables live next to the partials they are built from, with the
    aggregating agent attached."""
    metrics = metrics or AggregatorMetrics()
    app = create_app(settings, store=settings.store, table_standby_replicas=0)
    tables = Tables.create(app, release_every=settings.release_every)
    kafka = settings.kafka
    partials, spectra, runs, dead = (
        app.topic(kafka.topic(spec), key_serializer="raw", value_serializer="raw")
        for spec in (PARTIALS, SPECTRA, RUNS, DEADLETTER)
    )
    run_series = RunSeries(metrics, idle_seconds=settings.run_idle_seconds)
    outputs = Outputs(spectra=spectra.send, runs=runs.send, partials=partials.send, dead=dead.send)
    handler = PartialHandler(
        tables=tables,
        outputs=outputs,
        metrics=metrics,
        run_series=run_series,
        config=settings.analysis,
        late_files=settings.late_files,
        max_message_bytes=kafka.max_message_bytes,
    )
    # The ledger is a table restored with the state it describes.
    guarded = GuardedInput(
        app, partials, ledger=OffsetLedger(tables.offsets), metrics=metrics.input
    )
    agent = AggregatorAgent(
        guard=guarded.guard,
        tables=tables,
        handler=handler,
        stalled=StalledFiles(tables=tables, outputs=outputs, timeout=settings.file_timeout_seconds),
        upstream=UpstreamWatch(kafka, group=settings.upstream_group),
        run_series=run_series,
        timeouts_paused=metrics.timeouts_paused,
    )
    agent.attach(app, partials, close_check=settings.close_check_seconds)
    return app
