"""The project's Kafka topics and their settings, in one place for scripts, services and the chart.

Raw data arrives at 16 MB/s, so quax.raw keeps little: its retention is bounded by time
and by bytes (per partition). Results are small and kept for days; quax.runs holds the
latest cumulative spectrum of every run and is compacted, so a consumer that reads it
from the start recovers the state of every run; quax.progress, compacted too, holds what
the producer delivered of each run, so that a restarted producer resumes where it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ALL_TOPICS",
    "DEADLETTER",
    "MAX_MESSAGE_BYTES",
    "PARTIALS",
    "PROGRESS",
    "RAW",
    "RUNS",
    "SPECTRA",
    "TopicSpec",
]

#: Largest message any topic, producer or consumer of the project accepts (2 MiB).
#: Chunks stay well under 1 MiB by default; the margin covers larger n_fft or chunks.
MAX_MESSAGE_BYTES = 2 * 1024 * 1024

_MINUTE_MS = 60_000
_DAY_MS = 24 * 60 * _MINUTE_MS
_GIB = 1024**3


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """Name, partition count and topic-level configuration of one topic."""

    name: str
    partitions: int
    description: str
    config: dict[str, str] = field(default_factory=dict)


RAW = TopicSpec(
    "quax.raw",
    partitions=4,
    description="Raw I/Q chunks from the producer (RawChunk), spread over all partitions.",
    config={
        "retention.ms": str(30 * _MINUTE_MS),
        "retention.bytes": str(2 * _GIB),
        "segment.bytes": str(256 * 1024**2),
        "max.message.bytes": str(MAX_MESSAGE_BYTES),
    },
)
PARTIALS = TopicSpec(
    "quax.partials",
    partitions=4,
    description="Per-chunk spectrum statistics (Partial), keyed by run.",
    config={
        "retention.ms": str(_DAY_MS),
        "retention.bytes": str(2 * _GIB),
        "max.message.bytes": str(MAX_MESSAGE_BYTES),
    },
)
SPECTRA = TopicSpec(
    "quax.spectra",
    partitions=4,
    description="Per-file spectra (mean, std, count, kurtosis, timing), keyed by run.",
    # ~5 GB a day at n_fft 3072: two weeks, or 8 GiB per partition, whichever comes first.
    config={
        "retention.ms": str(14 * _DAY_MS),
        "retention.bytes": str(8 * _GIB),
        "max.message.bytes": str(MAX_MESSAGE_BYTES),
    },
)
RUNS = TopicSpec(
    "quax.runs",
    partitions=4,
    description="Latest cumulative spectrum and analysis of each run, keyed by run (compacted).",
    config={
        "cleanup.policy": "compact",
        "min.compaction.lag.ms": str(_MINUTE_MS),
        "max.message.bytes": str(MAX_MESSAGE_BYTES),
    },
)
DEADLETTER = TopicSpec(
    "quax.deadletter",
    partitions=1,
    description="Messages a service could not use (payloads cut to 64 KiB), reason in headers.",
    # A DAQ writing NaNs would dead-letter every chunk: the payload is cut (quaxspec.deadletter)
    # and the topic bounded in bytes too, so that it cannot fill the broker's disk.
    config={
        "retention.ms": str(14 * _DAY_MS),
        "retention.bytes": str(_GIB),
        "segment.bytes": str(128 * 1024**2),
        "max.message.bytes": str(MAX_MESSAGE_BYTES),
    },
)

PROGRESS = TopicSpec(
    "quax.progress",
    partitions=1,
    description="What the producer delivered of each run (RunProgress), keyed by run (compacted).",
    config={
        "cleanup.policy": "compact",
        "min.compaction.lag.ms": str(_MINUTE_MS),
        "segment.ms": str(60 * _MINUTE_MS),
        "max.message.bytes": str(MAX_MESSAGE_BYTES),
    },
)

ALL_TOPICS: tuple[TopicSpec, ...] = (RAW, PARTIALS, SPECTRA, RUNS, DEADLETTER, PROGRESS)
