"""The aggregator's Faust wiring: its agent and timers feed quax_aggregator.handling."""

from __future__ import annotations

import time
from typing import Any

import faust
import structlog

from quax_aggregator.handling import Outputs, PartialHandler, StalledFiles
from quax_aggregator.metrics import AggregatorMetrics, RunSeries
from quax_aggregator.settings import AggregatorSettings
from quax_aggregator.tables import Tables
from quax_aggregator.upstream import UpstreamWatch
from quaxspec.deadletter import Source
from quaxspec.offsets import OffsetGuard, OffsetLedger
from quaxspec.topics import DEADLETTER, PARTIALS, RUNS, SPECTRA

__all__ = ["register_agents"]

log = structlog.get_logger("quax.aggregator")

#: How often the consumer lag is measured (seconds).
LAG_SECONDS = 5.0


def register_agents(
    app: faust.App, settings: AggregatorSettings, tables: Tables, metrics: AggregatorMetrics
) -> None:
    """Attach the aggregating agent and the timer that closes stalled files."""
    kafka = settings.kafka
    partials, spectra, runs, dead = (
        app.topic(kafka.topic(spec), key_serializer="raw", value_serializer="raw")
        for spec in (PARTIALS, SPECTRA, RUNS, DEADLETTER)
    )
    upstream = UpstreamWatch(kafka, group=settings.upstream_group)
    run_series = RunSeries(metrics, idle_seconds=settings.run_idle_seconds)
    # Faust can lose a fetched partial around a rebalance (quaxspec.offsets); the ledger,
    # a table restored with the state it describes, sees the gap and rewinds.
    guard = OffsetGuard(
        lambda: app.consumer,
        OffsetLedger(tables.offsets),
        topic=partials.get_topic_name(),
        on_rewind=metrics.rewinds.inc,
        on_loss=metrics.lost_records.inc,
    )

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
    stalled = StalledFiles(tables=tables, outputs=outputs, timeout=settings.file_timeout_seconds)

    @app.agent(partials, concurrency=1)
    async def aggregate(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            tables.handling(message.partition)  # the guard writes the ledger too
            if await guard.admit(message):
                source = Source(message.topic, message.partition, message.offset)
                await handler.handle(event.key, event.value, source)
                guard.handled(message)
                tables.settle(message.partition)

    @app.timer(interval=LAG_SECONDS)
    async def export_lag() -> None:
        await guard.report_lag(metrics.lag)

    @app.timer(interval=60.0)
    async def forget_idle_runs() -> None:
        for run_id in run_series.forget_idle(time.monotonic()):
            log.info("Removed the metrics of an idle run.", run_id=run_id)

    @app.timer(interval=settings.close_check_seconds)
    async def close_stalled() -> None:
        idle, _ = await upstream.idle(guard.lag)
        metrics.timeouts_paused.set(0 if idle else 1)
        await stalled.tick(upstream_idle=idle)

    @app.on_partitions_assigned.connect
    async def own(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        (assigned,) = args  # the topic partitions assigned now
        # Writes held for a partition that went to another worker are forgotten: that
        # worker reads its records again from the last release.
        topic = partials.get_topic_name()
        tables.own([tp.partition for tp in assigned if tp.topic == topic])

    @app.on_before_shutdown.connect
    async def close_clients(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await upstream.close()
