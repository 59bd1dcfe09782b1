"""The producer's Prometheus metrics, on a registry of their own so that tests can read them."""

from __future__ import annotations

from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from quax_producer.items import BadPairReason

__all__ = ["Metrics"]

# Sends of 768 KiB chunks take milliseconds on a healthy broker and seconds on a sick one.
_SEND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Counters of what went through, send times and how far behind schedule the stream is."""

    def __init__(self, *, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.files = Counter(
            "quax_producer_files", "DAQ file pairs sent completely.", registry=registry
        )
        self.chunks = Counter(
            "quax_producer_chunks", "Raw chunks acknowledged by Kafka.", registry=registry
        )
        self.bytes = Counter(
            "quax_producer_bytes", "Bytes of I/Q samples sent (without headers).", registry=registry
        )
        self.slices = Counter("quax_producer_slices", "Slices sent.", registry=registry)
        self.dropped_samples = Counter(
            "quax_producer_dropped_samples",
            "Samples per channel after the last complete slice of a file (not analysed).",
            registry=registry,
        )
        self.bad_pairs = Counter(
            "quax_producer_bad_pairs",
            "Pairs skipped: unpaired files, unusable or mismatched files, no complete slice.",
            ["reason"],
            registry=registry,
        )
        for reason in get_args(BadPairReason):  # exported as 0 from the start, not when first seen
            self.bad_pairs.labels(reason=reason)
        self.send_seconds = Histogram(
            "quax_producer_send_seconds",
            "Time from handing a chunk to the Kafka client to its acknowledgement.",
            buckets=_SEND_BUCKETS,
            registry=registry,
        )
        self.schedule_lag = Gauge(
            "quax_producer_schedule_lag_seconds",
            "How late the last chunk was sent with respect to its due time.",
            registry=registry,
        )

    def value(self, name: str, **labels: str) -> float:
        """Current value of a sample (e.g. ``quax_producer_files_total``); 0 if never set."""
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found
