"""Prometheus metrics of the aggregator."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from quaxfaust.consuming import InputMetrics

__all__ = ["AggregatorMetrics", "RunSeries"]


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
        self.late_chunks = Counter(
            "quax_aggregator_late_chunks",
            "Chunks merged into files already closed (each emits the file again).",
            registry=registry,
        )
        self.dropped_late_chunks = Counter(
            "quax_aggregator_dropped_late_chunks",
            "Chunks of closed files that were no longer kept: slices lost.",
            registry=registry,
        )
        self.files = Counter(
            "quax_aggregator_files",
            "Files closed and emitted for the first time, by completeness.",
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
        self.input = InputMetrics(
            namespace="quax_aggregator",
            topic="partials",
            records="Partials",
            handled="aggregated",
            registry=registry,
        )
        self.run_best_sigma = Gauge(
            "quax_aggregator_run_best_sigma",
            "Significance (σ) of the best candidate in the run's latest spectrum; 0 if none.",
            ["run_id"],
            registry=registry,
        )
        self.run_radiometer_ratio = Gauge(
            "quax_aggregator_run_radiometer_ratio",
            "Measured over expected (1/√N) noise of the run's excess; about 1 when healthy.",
            ["run_id"],
            registry=registry,
        )
        self.run_files = Gauge(
            "quax_aggregator_run_files",
            "Files merged into the run.",
            ["run_id"],
            registry=registry,
        )
        self.timeouts_paused = Gauge(
            "quax_aggregator_timeouts_paused",
            "1 while file timeouts are paused (data may be waiting upstream, or Kafka is away).",
            registry=registry,
        )
        self.analysis_seconds = Histogram(
            "quax_aggregator_close_seconds",
            "Time to close a file: merge into the run, analyse, encode.",
            buckets=(1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2, 0.5),
            registry=registry,
        )


class RunSeries:
    """The per-run gauges, removed once a run has been idle for ``idle_seconds``.

    A weeks-long deployment sees many runs; a label set kept for each finished run would
    grow the scrape (and Prometheus' series) without bound.
    """

    def __init__(self, metrics: AggregatorMetrics, *, idle_seconds: float) -> None:
        self._metrics = metrics
        self._idle = idle_seconds
        self._updated: dict[str, float] = {}

    def set(
        self, run_id: str, *, best_sigma: float, radiometer: float, files: int, now: float
    ) -> None:
        """A run was updated: set its gauges."""
        self._metrics.run_best_sigma.labels(run_id=run_id).set(best_sigma)
        self._metrics.run_radiometer_ratio.labels(run_id=run_id).set(radiometer)
        self._metrics.run_files.labels(run_id=run_id).set(files)
        self._updated[run_id] = now

    def forget_idle(self, now: float) -> list[str]:
        """Remove the gauges of runs not updated for ``idle_seconds``; return those runs."""
        idle = [run for run, updated in self._updated.items() if now - updated >= self._idle]
        for run_id in idle:
            for gauge in (
                self._metrics.run_best_sigma,
                self._metrics.run_radiometer_ratio,
                self._metrics.run_files,
            ):
                gauge.remove(run_id)
            del self._updated[run_id]
        return idle
