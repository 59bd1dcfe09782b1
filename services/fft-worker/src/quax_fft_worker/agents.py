"""The FFT worker's Faust wiring: raw chunks feed quax_fft_worker.handling."""

from __future__ import annotations

from typing import Any

import faust
from faust.types import TP

from quax_fft_worker.handling import ChunkHandler, Outputs
from quax_fft_worker.metrics import WorkerMetrics
from quax_fft_worker.settings import FftWorkerSettings
from quaxspec.daq import DEFAULT_FS, DEFAULT_N_FFT, DEFAULT_N_SAMPLES, DEFAULT_SLICES_PER_CHUNK
from quaxspec.deadletter import Source
from quaxspec.offsets import OffsetGuard, OffsetLedger
from quaxspec.spectrum import SpectrumKernel
from quaxspec.topics import DEADLETTER, PARTIALS, RAW

__all__ = ["register_agents"]

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
    handler = ChunkHandler(
        kernels=kernels,
        outputs=Outputs(partials=partials.send, dead=dead.send),
        metrics=metrics,
        max_message_bytes=kafka.max_message_bytes,
    )
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
        mine = [tp.partition for tp in assigned if tp.topic == guard.topic]
        guard.forget(mine)
        metrics.assigned_partitions.set(len(mine))

    @app.agent(raw, concurrency=1)
    async def transform(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            if await guard.admit(message):
                source = Source(message.topic, message.partition, message.offset)
                await handler.handle(event.key, event.value, source)
                guard.handled(message)

    @app.timer(interval=LAG_SECONDS)
    async def export_lag() -> None:
        await guard.report_lag(metrics.lag)
