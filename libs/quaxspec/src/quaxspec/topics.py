"""The project's Kafka topics and their settings, in one place for scripts, services and the chart.

Raw data arrives at 16 MB/s, so quax.raw keeps little: its retention is bounded by time
and by bytes (per partition). Results are small and kept for days; quax.runs holds the
latest cumulative spectrum of every run and is compacted, so a consumer that reads it
from the start recovers the state of every run; quax.progress, compacted too, holds what
the producer delivered of each run, so that a restarted producer resumes where it was.

The aggregator's tables live in changelog topics named after its Faust app id
(changelog_topics). They are made up front with the others: a Faust app that creates them
itself on a fresh broker may ask for their partitions before its metadata shows them, and
then stops with PartitionsMismatch ("has 0 partitions").
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
    "CHANGELOG_CONFIG",
    "TABLES",
    "TopicSpec",
    "changelog_topics",
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


#: The aggregator's tables (quax_aggregator.tables), each kept in a changelog topic.
TABLES: tuple[str, ...] = ("files", "runs", "offsets")

#: Configuration of every changelog topic besides the compaction Faust asks for: short
#: segments let compaction keep about one record per open file and per run, even over a
#: weeks-long run.
CHANGELOG_CONFIG: dict[str, str] = {
    "cleanup.policy": "compact",
    "max.message.bytes": str(MAX_MESSAGE_BYTES),
    "segment.ms": str(60 * _MINUTE_MS),
    "min.cleanable.dirty.ratio": "0.1",
}


def changelog_topics(app_id: str) -> tuple[TopicSpec, ...]:
    """The changelog topics of the aggregator whose Faust app id is ``app_id``.

    Faust names a table's changelog ``<app id>-<table>-changelog`` and gives it the
    partitions of the topic whose events write the table (quax.partials).
    """
    return tuple(
        TopicSpec(
            f"{app_id}-{table}-changelog",
            partitions=PARTIALS.partitions,
            description=f"Changelog of the aggregator's {table} table (compacted).",
            config=dict(CHANGELOG_CONFIG),
        )
        for table in TABLES
    )
