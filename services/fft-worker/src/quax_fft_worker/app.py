"""The FFT worker's Faust app: its topics, kernels, handler and agent, wired together."""

from __future__ import annotations

import faust

from quax_fft_worker.agents import FftAgent
from quax_fft_worker.handling import ChunkHandler, Outputs
from quax_fft_worker.metrics import WorkerMetrics
from quax_fft_worker.settings import FftWorkerSettings
from quaxfaust.app import create_app
from quaxfaust.consuming import GuardedInput
from quaxspec.daq import DEFAULT_FS, DEFAULT_N_FFT, DEFAULT_N_SAMPLES, DEFAULT_SLICES_PER_CHUNK
from quaxspec.offsets import OffsetLedger
from quaxspec.spectrum import SpectrumKernel
from quaxspec.topics import DEADLETTER, PARTIALS, RAW

__all__ = ["build_app"]

#: The batches of a default DAQ file: whole chunks, and the short last one.
_DEFAULT_BATCHES = sorted(
    {DEFAULT_SLICES_PER_CHUNK, DEFAULT_N_SAMPLES // DEFAULT_N_FFT % DEFAULT_SLICES_PER_CHUNK} - {0}
)


class Kernels:
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


def build_app(settings: FftWorkerSettings, metrics: WorkerMetrics | None = None) -> faust.App:
    """A Faust app sized for raw chunks (no tables), with the FFT agent attached."""
    metrics = metrics or WorkerMetrics()
    app = create_app(settings)
    kafka = settings.kafka
    raw, partials, dead = (
        app.topic(kafka.topic(spec), key_serializer="raw", value_serializer="raw")
        for spec in (RAW, PARTIALS, DEADLETTER)
    )
    kernels = Kernels(settings)
    if settings.warm_up:
        kernels(DEFAULT_N_FFT, DEFAULT_FS).warm(_DEFAULT_BATCHES)
    handler = ChunkHandler(
        kernels=kernels,
        outputs=Outputs(partials=partials.send, dead=dead.send),
        metrics=metrics,
        max_message_bytes=kafka.max_message_bytes,
    )
    # The ledger is in memory and holds only the partitions assigned now.
    guarded = GuardedInput(app, raw, ledger=OffsetLedger({}), metrics=metrics.input)
    agent = FftAgent(guard=guarded.guard, handler=handler, partitions=metrics.assigned_partitions)
    agent.attach(app, raw)
    return app
