"""The FFT agent: raw chunk → spectrum kernel → partial statistics keyed by run."""

from __future__ import annotations

import time
from typing import Any

import faust
import structlog
from faust.types import TP

from quax_fft_worker.metrics import WorkerMetrics
from quax_fft_worker.settings import FftWorkerSettings
from quaxspec.daq import DEFAULT_FS, DEFAULT_N_FFT, DEFAULT_N_SAMPLES, DEFAULT_SLICES_PER_CHUNK
from quaxspec.deadletter import dead_letter
from quaxspec.limits import MessageTooLargeError, ensure_fits
from quaxspec.messages import MessageDecodeError, Partial, RawChunk, SkippedChunk
from quaxspec.offsets import OffsetGuard, OffsetLedger
from quaxspec.spectrum import NonFiniteSamplesError, SpectrumKernel
from quaxspec.topics import DEADLETTER, PARTIALS, RAW

__all__ = ["register_agents"]

log = structlog.get_logger("quax.fft-worker")

#: How often the consumer lag is measured (seconds).
LAG_SECONDS = 5.0

#: The batches of a default DAQ file: whole chunks, and the short last one.
_DEFAULT_BATCHES = sorted(
    {DEFAULT_SLICES_PER_CHUNK, DEFAULT_N_SAMPLES // DEFAULT_N_FFT % DEFAULT_SLICES_PER_CHUNK} - {0}
)


class _Kernels:
    """One kernel per (n_fft, fs), so its FFT plans are made once and reused."""

    def __init__(self, settings: FftWorkerSettings) -> None:
        self._settings = settings
        self._kernels: dict[tuple[int, float], SpectrumKernel] = {}

    def __call__(self, n_fft: int, fs: float) -> SpectrumKernel:
        kernel = self._kernels.get((n_fft, fs))
        if kernel is None:
            kernel = SpectrumKernel(
                n_fft=n_fft,
                fs=fs,
                threads=self._settings.fft_threads,
                planner_effort=self._settings.planner_effort,
            )
            self._kernels[(n_fft, fs)] = kernel
        return kernel


def register_agents(app: faust.App, settings: FftWorkerSettings, metrics: WorkerMetrics) -> None:
    """Attach the FFT agent (concurrency 1: scale with replicas, one per partition at most)."""
    kafka = settings.kafka
    raw = app.topic(kafka.topic(RAW), key_serializer="raw", value_serializer="raw")
    partials = app.topic(kafka.topic(PARTIALS), key_serializer="raw", value_serializer="raw")
    dead = app.topic(kafka.topic(DEADLETTER), key_serializer="raw", value_serializer="raw")
    kernels = _Kernels(settings)
    max_bytes = kafka.max_message_bytes
    if settings.warm_up:
        kernels(DEFAULT_N_FFT, DEFAULT_FS).warm(_DEFAULT_BATCHES)

    # Faust can lose a fetched chunk around a rebalance (quaxspec.offsets); a worker that
    # keeps the partition sees the gap and rewinds. The ledger is in memory and
    # holds only the partitions assigned now (another worker may have moved the others on).
    guard = OffsetGuard(
        lambda: app.consumer,
        OffsetLedger({}),
        topic=raw.get_topic_name(),
        on_rewind=metrics.rewinds.inc,
        on_loss=metrics.lost_records.inc,
    )

    @app.on_partitions_assigned.connect
    async def keep_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        assigned: set[TP] = args[0]
        guard.forget(tp.partition for tp in assigned if tp.topic == guard.topic)

    @app.agent(raw, concurrency=1)
    async def transform(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            if await guard.admit(event.message):
                await handle(event)
                guard.handled(event.message)

    async def handle(event: faust.EventT[bytes]) -> None:
        """Transform one raw chunk into a partial, or dead-letter it with the reason.

        Whatever goes wrong with one record (it does not decode, its samples are not
        finite, its partial would not fit a message, or anything unforeseen) sends it to
        the dead-letter topic once and the stream goes on; sending to Kafka is not guarded
        (a broker problem is not the record's fault).
        """
        message = event.message
        chunk = None
        try:
            chunk = RawChunk.from_bytes(event.value)
            started = time.perf_counter()
            moments = kernels(chunk.n_fft, chunk.fs).moments(chunk.i, chunk.q)
            metrics.kernel_seconds.observe(time.perf_counter() - started)
            partial = ensure_fits(
                Partial.of_chunk(chunk, moments).to_bytes(),
                limit=max_bytes,
                what=f"the partial of file {chunk.file_number} chunk {chunk.first_slice}",
            )
        except Exception as error:
            if isinstance(error, MessageDecodeError):
                reason, why = "undecodable", str(error)
            elif isinstance(error, NonFiniteSamplesError):
                reason, why = "non-finite", str(error)
            elif isinstance(error, MessageTooLargeError):
                reason, why = "too-large", str(error)
            else:
                reason, why = "error", f"{type(error).__name__}: {error}"
                log.exception("A raw chunk could not be transformed.", error=why)
            metrics.rejects.labels(reason=reason).inc()
            await dead_letter(
                dead.send,
                key=event.key,
                value=event.value,
                reason=why,
                service="fft-worker",
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
            )
            if chunk is not None:  # tell the aggregator these slices will not come
                notice = SkippedChunk.of_chunk(chunk)
                await partials.send(key=chunk.run_id.encode(), value=notice.to_bytes())
            return
        await partials.send(key=chunk.run_id.encode(), value=partial)
        metrics.chunks.inc()
        metrics.slices.inc(chunk.n_slices)
        metrics.input_bytes.inc(chunk.i.nbytes + chunk.q.nbytes)

    @app.timer(interval=LAG_SECONDS)
    async def export_lag() -> None:
        await guard.report_lag(metrics.lag)
