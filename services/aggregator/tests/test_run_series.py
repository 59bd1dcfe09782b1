"""Per-run metric series go once a run is idle, so that weeks of runs do not pile up."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from quax_aggregator.metrics import AggregatorMetrics, RunSeries


def _runs_exported(registry: CollectorRegistry) -> set[str]:
    return {
        sample.labels["run_id"]
        for family in registry.collect()
        for sample in family.samples
        if "run_id" in sample.labels
    }


def test_an_idle_run_loses_its_series_and_a_live_one_keeps_them() -> None:
    registry = CollectorRegistry()
    series = RunSeries(AggregatorMetrics(registry=registry), idle_seconds=100.0)
    series.set("old", best_sigma=5.0, radiometer=1.0, files=10, now=0.0)
    series.set("live", best_sigma=0.0, radiometer=1.01, files=3, now=50.0)
    assert _runs_exported(registry) == {"old", "live"}
    assert registry.get_sample_value("quax_aggregator_run_files", {"run_id": "old"}) == 10

    assert series.forget_idle(99.0) == []
    assert series.forget_idle(100.0) == ["old"]
    assert _runs_exported(registry) == {"live"}
    series.set("live", best_sigma=0.0, radiometer=1.0, files=4, now=140.0)
    assert series.forget_idle(200.0) == []  # updated since: still live
    assert series.forget_idle(240.0) == ["live"]
    assert _runs_exported(registry) == set()
    series.set("old", best_sigma=1.0, radiometer=1.0, files=11, now=300.0)  # it comes back
    assert registry.get_sample_value("quax_aggregator_run_files", {"run_id": "old"}) == 11
