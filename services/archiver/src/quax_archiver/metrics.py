"""The archiver's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["ArchiverMetrics"]


class ArchiverMetrics:
    """Rows and files written, flushes, rejects and records lost to retention."""

    def __init__(self) -> None:
        self.rows = Counter("quax_archiver_rows", "Records archived, by kind.", ["kind"])
        self.files = Counter("quax_archiver_parquet_files", "Parquet files written.")
        self.flush_seconds = Histogram(
            "quax_archiver_flush_seconds",
            "Time to make a batch durable (write, fsync, rename).",
            buckets=(0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30),
        )
        self.last_flush = Gauge(
            "quax_archiver_last_flush_timestamp_seconds", "Unix time of the last durable flush."
        )
        self.buffered = Gauge("quax_archiver_buffered_records", "Records read, not yet durable.")
        self.oldest = Gauge(
            "quax_archiver_oldest_buffered_seconds",
            "Age of the oldest record read and not yet durable (0: everything read is archived).",
        )
        self.rejects = Counter(
            "quax_archiver_rejects", "Records sent to the dead-letter topic, by kind.", ["kind"]
        )
        self.lost = Counter(
            "quax_archiver_lost_records",
            "Records that left Kafka's retention before the archiver read them.",
        )
        for kind in ("file", "run"):  # every series exists from the start, at 0
            self.rows.labels(kind=kind)
            self.rejects.labels(kind=kind)
