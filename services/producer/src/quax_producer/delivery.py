"""The producer's link to Kafka: a client made again after any failure, and the progress topic.

A broker that restarts, moves or is away for minutes must not end the producer, nor lose
what the DAQ writes meanwhile (it stays on the DAQ's disk). When a delivery fails, the
client is closed and a new one is made, with an exponential backoff (tenacity), until
Kafka answers again; the file being sent is then sent again from its first unacknowledged
chunk. A fresh client matters: an idempotent producer whose batches expired cannot go on
with the same producer id and sequence numbers. While it waits, the producer says so in
its log (every attempt) and in ``quax_producer_kafka_connected``.

The client that sends is librdkafka's (:mod:`quax_producer.client`, chosen by measurement);
listing topics and reading quax.progress use aiokafka, as the other services do.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
import tenacity
from aiokafka import AIOKafkaConsumer, TopicPartition, errors
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from quax_producer.client import ClientError, RawProducer
from quax_producer.metrics import Metrics
from quax_producer.sending import within
from quax_producer.settings import ProducerSettings
from quaxspec.messages import MessageDecodeError
from quaxspec.progress import RunProgress
from quaxspec.topics import PROGRESS, RAW

__all__ = ["KafkaLink", "MissingTopicError", "StopRequestedError"]

_log = structlog.get_logger(__name__)
_T = TypeVar("_T")

# A few milliseconds let the client put chunks for one partition into one request without
# adding latency worth mentioning next to a 4.2 s file.
_LINGER_MS = 5
# Closing a client whose broker is away would wait for its batches to expire.
_CLOSE_SECONDS = 5.0


#: Errors that waiting cannot cure: a message too large, a topic that cannot exist, a client
#: that is not allowed. They end the producer (status 1) instead of being retried forever.
_FATAL: tuple[type[KafkaError], ...] = (
    errors.MessageSizeTooLargeError,
    errors.RecordTooLargeError,
    errors.RecordListTooLargeError,
    errors.InvalidTopicError,
    errors.TopicAuthorizationFailedError,
    errors.ClusterAuthorizationFailedError,
    errors.SaslAuthenticationFailed,
    errors.UnsupportedVersionError,
)


def _curable(error: BaseException) -> bool:
    """Whether waiting for Kafka and trying again can cure ``error``."""
    if isinstance(error, ClientError):
        return error.curable
    return isinstance(error, KafkaError | OSError) and not isinstance(error, _FATAL)


class MissingTopicError(RuntimeError):
    """A project topic does not exist (topics are created explicitly, never automatically)."""


class StopRequestedError(Exception):
    """A stop was requested while waiting for Kafka."""


class KafkaLink:
    """The Kafka client of the producer, and how it recovers from a failure."""

    def __init__(
        self, settings: ProducerSettings, *, metrics: Metrics, stop: asyncio.Event
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._stop = stop
        self.raw_topic = settings.kafka.topic(RAW)
        self.progress_topic = settings.kafka.topic(PROGRESS)
        self._producer: RawProducer | None = None
        self.partitions: list[int] = []
        #: Seconds within which Kafka must acknowledge a delivery.
        self.delivery_timeout = settings.delivery_timeout_seconds

    @property
    def producer(self) -> RawProducer:
        """The client now in use."""
        if self._producer is None:
            raise RuntimeError("the Kafka link is not connected")
        return self._producer

    async def connect(self) -> None:
        """Make a client and learn the raw topic's partitions, waiting for Kafka if it is away."""
        await self._retrying(self._connect_once, doing="connecting")

    async def recover(self, error: BaseException) -> None:
        """After a failed delivery: close the client, wait for Kafka, make a new one.

        Re-raises an error that waiting cannot cure.
        """
        if not _curable(error):
            raise error
        self._metrics.kafka_connected.set(0)
        self._metrics.kafka_failures.inc()
        _log.warning(
            "Kafka did not acknowledge a delivery; the unacknowledged chunks will be sent "
            "again once it answers.",
            error=repr(error),
        )
        await self._close_client()
        await self.connect()

    async def read_progress(self) -> list[RunProgress]:
        """The latest progress record of every run, one per shard for a sharded run.

        (quax.progress is compacted and keyed by run, and shard.)
        """
        records = await self._retrying(self._read_progress_once, doing="reading quax.progress")
        return list(records.values())

    async def publish(self, progress: RunProgress) -> None:
        """Write a run's progress and wait for Kafka to acknowledge it (raises KafkaError)."""
        started = time.monotonic()
        delivery = await within(
            self.delivery_timeout,
            self.producer.send(self.progress_topic, progress.to_bytes(), key=progress.key),
            what="handing a progress record to the client",
        )
        left = max(0.0, self.delivery_timeout - (time.monotonic() - started))
        await within(left, delivery, what="a progress record's acknowledgement")

    def delivered(self) -> None:
        """Kafka acknowledged a delivery: it is reachable."""
        self._metrics.kafka_connected.set(1)

    async def close(self) -> None:
        """Stop the client once it has sent what it still holds (within a delivery timeout)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop(self.delivery_timeout)

    async def _retrying(self, operation: Callable[[], Awaitable[_T]], *, doing: str) -> _T:
        async def before_sleep(state: tenacity.RetryCallState) -> None:
            self._metrics.kafka_connected.set(0)
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            _log.warning(
                "Kafka is unavailable; waiting for it.",
                doing=doing,
                attempt=state.attempt_number,
                error=repr(error),
                retry_in_s=round(wait, 1),
                waiting_s=round(time.monotonic() - state.start_time, 1),
                bootstrap_servers=self._settings.kafka.bootstrap_servers,
            )
            await self._close_client()

        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(_curable),
            wait=tenacity.wait_exponential(multiplier=0.5, min=0.5, max=10)
            + tenacity.wait_random(0, 0.5),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        result: _T = await retrying(operation)
        self._metrics.kafka_connected.set(1)
        return result

    async def _sleep(self, seconds: float) -> None:
        # A stop request ends the wait at once instead of after the backoff.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        if self._stop.is_set():
            raise StopRequestedError("a stop was requested while Kafka was unavailable")

    async def _connect_once(self) -> None:
        await self._check_topics()
        if self._producer is None:
            kafka = self._settings.kafka
            timeout_ms = int(self.delivery_timeout * 1000)
            self._producer = RawProducer(
                {
                    **kafka.librdkafka_config(),
                    "client.id": "quax-producer",
                    "acks": "all",
                    "enable.idempotence": True,
                    "message.max.bytes": kafka.max_message_bytes,
                    "linger.ms": _LINGER_MS,
                    # A keyed record (quax.progress) goes where the Java client and aiokafka
                    # put it, as before: one run's records stay in one partition.
                    "partitioner": "murmur2_random",
                    # A delivery not acknowledged within this fails (and is sent again by a
                    # new client once Kafka answers).
                    "message.timeout.ms": timeout_ms,
                    "request.timeout.ms": min(timeout_ms, 30_000),
                }
            )
        partitions = await self.producer.partitions_for(
            self.raw_topic, timeout=self.delivery_timeout
        )
        self.partitions = sorted(partitions)

    async def _check_topics(self) -> None:
        # Asked up front: the client would retry for its whole request timeout, logging an
        # error ten times a second, before saying that a topic is missing.
        admin = AIOKafkaAdminClient(**self._settings.kafka.client_options())
        await admin.start()
        try:
            existing = set(await admin.list_topics())
        finally:
            await admin.close()
        for topic in (self.raw_topic, self.progress_topic):
            if topic not in existing:
                raise MissingTopicError(
                    f"topic {topic} does not exist; create the project's topics first "
                    "(tools/kafka/kafka.sh topics, or the chart's topics job)"
                )

    async def _read_progress_once(self) -> dict[bytes, RunProgress]:
        kafka = self._settings.kafka
        consumer = AIOKafkaConsumer(
            **kafka.client_options(),
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=kafka.max_message_bytes,
        )
        await consumer.start()
        records: dict[bytes, RunProgress] = {}
        try:
            partitions = [
                TopicPartition(self.progress_topic, p)
                for p in sorted(consumer.partitions_for_topic(self.progress_topic) or {0})
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                batches = await consumer.getmany(*partitions, timeout_ms=1000)
                for batch in batches.values():
                    for record in batch:
                        _take_progress(records, record.key, record.value)
        finally:
            await consumer.stop()
        return records

    async def _close_client(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _quietly_stop(producer)


def _take_progress(
    records: dict[bytes, RunProgress], key: bytes | None, value: bytes | None
) -> None:
    if value is None:  # a tombstone: the run (or one shard of it) was deleted
        records.pop(key or b"", None)
        return
    try:
        progress = RunProgress.from_bytes(value)
    except MessageDecodeError as error:
        _log.warning("Ignored a progress record that did not decode.", reason=str(error))
        return
    records[progress.key] = progress


async def _quietly_stop(producer: RawProducer) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(_CLOSE_SECONDS), 2 * _CLOSE_SECONDS)
