"""The aggregator's agent (partials and close requests → tables → spectra) and its file timer."""

from __future__ import annotations

import time
from typing import Any

import faust
import structlog

from quax_aggregator.metrics import AggregatorMetrics, RunSeries
from quax_aggregator.settings import AggregatorSettings
from quax_aggregator.tables import Tables, file_key
from quax_aggregator.upstream import UpstreamWatch
from quaxspec.deadletter import dead_letter
from quaxspec.limits import MessageTooLargeError, ensure_fits
from quaxspec.merging import Step, apply_close, apply_partial
from quaxspec.messages import CloseFile, MessageDecodeError, Partial, decode_partials_topic
from quaxspec.offsets import OffsetGuard, OffsetLedger
from quaxspec.timeouts import SilenceClock
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
    config = settings.analysis
    silence: SilenceClock[bytes] = SilenceClock(timeout=settings.file_timeout_seconds)
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

    def encode(step: Step) -> tuple[bytes | None, bytes | None]:
        """The step's spectra as messages; MessageTooLargeError if one cannot be sent."""
        limit = kafka.max_message_bytes
        file, run = step.file_spectrum, step.run_spectrum
        return (
            None
            if file is None
            else ensure_fits(file.to_bytes(), limit=limit, what="a file spectrum"),
            None
            if run is None
            else ensure_fits(run.to_bytes(), limit=limit, what="a run spectrum"),
        )

    async def emit(step: Step, file_message: bytes | None, run_message: bytes | None) -> None:
        spectrum = step.file_spectrum
        if spectrum is None or file_message is None:
            return
        key = spectrum.run_id.encode()
        await spectra.send(key=key, value=file_message)
        run = step.run_spectrum
        if run_message is not None:
            await runs.send(key=key, value=run_message)
        if spectrum.revision == 0:
            metrics.files.labels(complete=str(spectrum.complete).lower()).inc()
            metrics.latency.observe(max(spectrum.emitted_time - spectrum.daq_time, 0.0))
        best = max(run.candidates, key=lambda c: c.significance, default=None) if run else None
        if run is not None:
            run_series.set(
                run.run_id,
                best_sigma=best.significance if best else 0.0,
                radiometer=run.radiometer_ratio,
                files=run.files,
                now=time.monotonic(),
            )
        best_khz = None if best is None else round((best.frequency_hz - spectrum.f_lo) / 1e3, 2)
        if spectrum.revision:
            what = "Revised a file with a late chunk."
        elif spectrum.complete:
            what = "Emitted a file spectrum."
        else:
            what = "Closed an incomplete file."
        log.info(
            what,
            run_id=spectrum.run_id,
            file=spectrum.file_number,
            revision=spectrum.revision,
            slices=spectrum.count,
            expected=spectrum.expected_count,
            latency_s=round(max(spectrum.emitted_time - spectrum.daq_time, 0.0), 3),
            run_files=run.files if run else 0,
            run_slices=run.slices if run else 0,
            radiometer=round(run.radiometer_ratio, 3) if run else None,
            best_candidate_khz=best_khz,
            best_sigma=round(best.significance, 2) if best else None,
        )

    @app.agent(partials, concurrency=1)
    async def aggregate(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            if await guard.admit(event.message):
                await handle(event)
                guard.handled(event.message)

    async def handle(event: faust.EventT[bytes]) -> None:
        """Merge one partial (or apply one close request) and emit what it completes.

        Whatever goes wrong with one record before anything is written or sent (it does
        not decode, contradicts its file, would make a message too large, or anything
        unforeseen) sends it to the dead-letter topic once, leaves the tables as they were
        and the stream goes on; sending to Kafka is not guarded.
        """
        try:
            message = decode_partials_topic(event.value)
            key = file_key(message.run_id, message.file_number)
            file, run = (
                tables.file(message.run_id, message.file_number),
                tables.run(message.run_id),
            )
            closing = time.perf_counter()
            now = time.time()
            late_files = settings.late_files
            if isinstance(message, CloseFile):
                step = apply_close(
                    message, file=file, run=run, now=now, config=config, late_files=late_files
                )
            else:
                step = apply_partial(
                    message, file=file, run=run, now=now, config=config, late_files=late_files
                )
            file_message, run_message = encode(step)
        except Exception as error:
            await reject(event, error)
            return
        await emit(step, file_message, run_message)
        if step.file is None:
            if key in tables.files:
                del tables.files[key]
        else:
            tables.files[key] = step.file.to_bytes()
        for number in step.forget:  # closed files the run no longer keeps for late chunks
            forgotten = file_key(message.run_id, number)
            if forgotten in tables.files:
                del tables.files[forgotten]
        if step.run is not None:
            tables.runs[message.run_id.encode()] = step.run.to_bytes()
        if step.file_spectrum is not None:
            metrics.analysis_seconds.observe(time.perf_counter() - closing)
        if step.duplicate:
            metrics.duplicates.inc()
            log.info(
                "Ignored a redelivered partial.",
                run_id=message.run_id,
                file=message.file_number,
            )
        elif step.dropped:
            metrics.dropped_late_chunks.inc()
            log.warning(
                "Dropped a late chunk: its file was closed and is no longer kept.",
                run_id=message.run_id,
                file=message.file_number,
                late_files=settings.late_files,
            )
            return
        if step.late:
            metrics.late_chunks.inc()
        if not step.duplicate and isinstance(message, Partial):
            metrics.partials.inc()
            metrics.slices.inc(int(message.moments.n))

    async def reject(event: faust.EventT[bytes], error: Exception) -> None:
        why = str(error)
        if isinstance(error, MessageDecodeError):
            reason = "undecodable"
        elif isinstance(error, MessageTooLargeError):
            reason = "too-large"
        elif isinstance(error, ValueError):
            reason = "inconsistent"
        else:
            reason, why = "error", f"{type(error).__name__}: {error}"
            log.exception("A partial could not be merged.", error=why)
        message = event.message
        metrics.rejects.labels(reason=reason).inc()
        await dead_letter(
            dead.send,
            key=event.key,
            value=event.value,
            reason=why,
            service="aggregator",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )

    @app.timer(interval=LAG_SECONDS)
    async def export_lag() -> None:
        await guard.report_lag(metrics.lag)

    @app.timer(interval=60.0)
    async def forget_idle_runs() -> None:
        for run_id in run_series.forget_idle(time.monotonic()):
            log.info("Removed the metrics of an idle run.", run_id=run_id)

    @app.timer(interval=settings.close_check_seconds)
    async def close_stalled() -> None:
        # Only silence counts: time during which the file's chunks could have come. While
        # the FFT workers or this aggregator are behind, or Kafka cannot be asked, the
        # chunks may be on their way (quaxspec.timeouts). Requests go through the partials
        # topic, keyed by run, so they are applied in order after every partial already
        # there; the clock restarts when this process starts.
        idle, _ = await upstream.idle(guard.lag)
        metrics.timeouts_paused.set(0 if idle else 1)
        files = {file_key(f.run_id, f.file_number): f for f in tables.open_files()}
        due = silence.tick(
            time.time(), upstream_idle=idle, files=[(k, f.updated) for k, f in files.items()]
        )
        for key in due:
            file = files[key]
            log.warning(
                "Closing a file that stopped receiving chunks.",
                run_id=file.run_id,
                file=file.file_number,
                slices=int(file.moments.n),
                expected=file.total_slices,
                silent_s=round(silence.silence(key), 1),
            )
            request = CloseFile(run_id=file.run_id, file_number=file.file_number)
            await partials.send(key=file.run_id.encode(), value=request.to_bytes())

    @app.on_before_shutdown.connect
    async def close_clients(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await upstream.close()
