"""Prometheus metrics of the aggregator."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

__all__ = ["AggregatorMetrics"]


class AggregatorMetrics:
    """What the aggregator merged, closed, emitted and rejected."""

    def __init__(self, *, registry: CollectorRegistry = REGISTRY) -> None:
        self.partials = Counter(
            "quax_aggregator_partials", "Partials merged (new ones).", registry=registry
        )
        self.slices = Counter(
            "quax_aggregator_slices", "Slices merged into files.", registry=registry
        )
        self.duplicates = Counter(
            "quax_aggregator_duplicates",
            "Redelivered partials recognised and not counted again.",
            registry=registry,
        )
        self.files = Counter(
            "quax_aggregator_files",
            "Files closed and emitted, by completeness.",
            ["complete"],
            registry=registry,
        )
        self.rejects = Counter(
            "quax_aggregator_rejects",
            "Messages sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=registry,
        )
        self.latency = Histogram(
            "quax_end_to_end_latency_seconds",
            "From the DAQ file time to its spectrum being emitted.",
            buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300),
            registry=registry,
        )
        self.analysis_seconds = Histogram(
            "quax_aggregator_close_seconds",
            "Time to close a file: merge into the run, analyse, encode.",
            buckets=(1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2, 0.5),
            registry=registry,
        )
