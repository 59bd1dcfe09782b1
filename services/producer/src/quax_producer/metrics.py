"""The producer's Prometheus metrics, on a registry of their own so that tests can read them."""

from __future__ import annotations

from typing import Literal, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from quax_producer.items import BadPairReason

__all__ = ["Metrics", "SkipReason"]

#: Why a complete pair was not sent: written again with the content delivered, or older
#: than the run's first file (left over from an older acquisition).
SkipReason = Literal["repeat", "predates"]

# Sends of 768 KiB chunks take milliseconds on a healthy broker and seconds on a sick one.
_SEND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A pair is in Kafka well under a second after the DAQ's last write, unless Kafka was away.
_DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
# A batch of folder events or a poll of a few files takes well under a millisecond.
_LOOK_BUCKETS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0)


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

        self.kafka_connected = Gauge(
            "quax_producer_kafka_connected",
            "1 while Kafka acknowledges deliveries; 0 while the producer waits for it.",
            registry=registry,
        )
        self.kafka_failures = Counter(
            "quax_producer_kafka_failures",
            "Deliveries Kafka did not acknowledge in time (the chunks were sent again).",
            registry=registry,
        )
        self.skipped_files = Counter(
            "quax_producer_skipped_files",
            "Complete pairs not sent: written again unchanged, or older than the run's first file.",
            ["reason"],
            registry=registry,
        )
        for skip in get_args(SkipReason):
            self.skipped_files.labels(reason=skip)
        self.changed_while_sent = Counter(
            "quax_producer_changed_while_sent",
            "Pairs sent while written whose finished files differ from the bytes sent (the "
            "DAQ rewrote them: turn watch_send_while_written off).",
            registry=registry,
        )
        self.source_retries = Counter(
            "quax_producer_source_retries",
            "Transient errors of the object store waited out and retried (s3 source).",
            registry=registry,
        )
        self.new_acquisitions = Counter(
            "quax_producer_new_acquisitions",
            "New acquisitions found in a watched folder (each started a new run).",
            registry=registry,
        )
        self.run = Gauge(
            "quax_producer_run_info",
            "The run being delivered (value 1, run id as a label).",
            ["run_id"],
            registry=registry,
        )
        self.delivery_delay = Histogram(
            "quax_producer_delivery_delay_seconds",
            "From a pair's DAQ time (its last write on disk) to Kafka acknowledging it whole.",
            buckets=_DELAY_BUCKETS,
            registry=registry,
        )
        self.watch_seconds = Histogram(
            "quax_producer_watch_seconds",
            "Time spent on one batch of folder events, or on one poll of the folder.",
            buckets=_LOOK_BUCKETS,
            registry=registry,
        )

    def running(self, run_id: str) -> None:
        """Say which run is being delivered (only one at a time)."""
        self.run.clear()
        self.run.labels(run_id=run_id).set(1)

    def value(self, name: str, **labels: str) -> float:
        """Current value of a sample (e.g. ``quax_producer_files_total``); 0 if never set."""
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found
