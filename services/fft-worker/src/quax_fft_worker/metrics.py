"""Prometheus metrics of the FFT worker."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from quaxfaust.consuming import InputMetrics

__all__ = ["WorkerMetrics"]


class WorkerMetrics:
    """Counters and timings of the chunks one worker transforms."""

    def __init__(self, *, registry: CollectorRegistry = REGISTRY) -> None:
        self.chunks = Counter("quax_fft_chunks", "Chunks transformed.", registry=registry)
        self.slices = Counter("quax_fft_slices", "Slices transformed.", registry=registry)
        self.input_bytes = Counter(
            "quax_fft_input_bytes", "Raw sample bytes transformed.", registry=registry
        )
        self.rejects = Counter(
            "quax_fft_rejects",
            "Chunks sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=registry,
        )
        self.input = InputMetrics(
            namespace="quax_fft",
            topic="raw",
            records="Raw chunks",
            handled="transformed",
            registry=registry,
        )
        self.assigned_partitions = Gauge(
            "quax_fft_assigned_partitions",
            "Partitions of the input topic assigned to this worker now.",
            registry=registry,
        )
        self.kernel_seconds = Histogram(
            "quax_fft_kernel_seconds",
            "Time of the spectrum kernel per chunk.",
            buckets=(1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1),
            registry=registry,
        )
