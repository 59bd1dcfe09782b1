"""The producer's main loop: records from a source, cut into chunks, paced, sent to quax.raw."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from quax_producer.chunking import ChunkPlan, NoSlicesError, chunk_record, partition_for
from quax_producer.items import BadPair
from quax_producer.metrics import Metrics
from quax_producer.pacing import Pacer
from quax_producer.sending import ChunkSender
from quax_producer.settings import ProducerSettings
from quax_producer.shutdown import until_stopped
from quax_producer.sources import open_source
from quaxspec.daq import DaqRecord
from quaxspec.topics import RAW

__all__ = ["MissingTopicError", "stream"]

_log = structlog.get_logger(__name__)

# A few milliseconds let the client put chunks for one partition into one request without
# adding latency worth mentioning next to a 4.2 s file.
_LINGER_MS = 5


class MissingTopicError(RuntimeError):
    """The raw topic does not exist (topics are created explicitly, never automatically)."""


async def stream(
    settings: ProducerSettings, *, metrics: Metrics, stop: asyncio.Event | None = None
) -> None:
    """Send every record of the configured source, until it ends or ``stop`` is set."""
    topic = settings.kafka.topic(RAW)
    # Every line logged while streaming (pacer, sources, signals) says which run it is about.
    with structlog.contextvars.bound_contextvars(run_id=settings.run, source=settings.source):
        await _stream(settings, topic=topic, metrics=metrics, stop=stop or asyncio.Event())


async def _stream(
    settings: ProducerSettings, *, topic: str, metrics: Metrics, stop: asyncio.Event
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        client_id="quax-producer",
        acks="all",
        enable_idempotence=True,
        max_request_size=settings.kafka.max_message_bytes,
        linger_ms=_LINGER_MS,
    )
    try:
        await producer.start()
        await _check_topic(settings, topic)
        partitions = sorted(await producer.partitions_for(topic))
        sender = ChunkSender(
            producer=producer,
            topic=topic,
            max_in_flight=settings.max_in_flight,
            send_seconds=metrics.send_seconds,
        )
        files = _FileSender(
            settings=settings, metrics=metrics, sender=sender, partitions=partitions
        )
        _log.info("Streaming DAQ pairs.", topic=topic, partitions=len(partitions))
        try:
            async with contextlib.aclosing(open_source(settings)) as source:
                waiting_since = time.monotonic()
                async for item in until_stopped(source, stop):
                    if settings.source == "watch":
                        files.idle(time.monotonic() - waiting_since)
                    if isinstance(item, BadPair):
                        files.skip(item)
                    else:
                        await files.send(item)
                    waiting_since = time.monotonic()
            await sender.flush()
        finally:
            sender.abandon()
        _log.info("Every chunk sent has been acknowledged.", files=int(files.handed))
    finally:
        # Stopping the client also sends whatever it still buffers.
        await producer.stop()


async def _check_topic(settings: ProducerSettings, topic: str) -> None:
    # Asked once up front: the producer client would retry for its whole request timeout,
    # logging an error ten times a second, before saying that the topic is missing.
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            raise MissingTopicError(
                f"topic {topic} does not exist; create the project's topics first "
                "(tools/kafka/kafka.sh topics)"
            )
    finally:
        await admin.close()


class _FileSender:
    """Sends one record after another on one schedule, counting what Kafka acknowledged."""

    def __init__(
        self,
        *,
        settings: ProducerSettings,
        metrics: Metrics,
        sender: ChunkSender,
        partitions: list[int],
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._sender = sender
        self._partitions = partitions
        self._plan = ChunkPlan(
            run_id=settings.run,
            n_fft=settings.n_fft,
            slices_per_chunk=settings.slices_per_chunk,
            fs=settings.fs,
            f_lo=settings.f_lo,
        )
        self._pacer: Pacer | None = None
        self.handed = 0

    def idle(self, seconds: float) -> None:
        """Time spent waiting for the DAQ to finish a file."""
        if self._pacer is not None:
            self._pacer.idle(seconds)

    def skip(self, bad: BadPair) -> None:
        """Log and count a pair that cannot be sent."""
        self._metrics.bad_pairs.labels(reason=bad.reason).inc()
        _log.warning(
            "Skipped a bad pair.",
            file=str(bad.error.path),
            reason=bad.error.reason,
            kind=bad.reason,
        )

    async def send(self, record: DaqRecord) -> None:
        """Cut, pace and send one record; counted as a file once every chunk is acknowledged."""
        plan, metrics = self._plan, self._metrics
        try:
            n_chunks = plan.n_chunks(record)
        except NoSlicesError as error:
            self.skip(BadPair(error=error, reason="no_slices"))
            return
        layout = record.layout(plan.n_fft)
        pacer = self._pacer or self._start_pacing(plan.chunk_bytes(layout.n_slices))
        if self._settings.source == "synthetic":
            # The synthetic DAQ acquires a file during its slot of the schedule and streams it
            # as it goes; the file is complete when its last chunk is due, so that downstream
            # latencies measure the pipeline, not the pacing or the generator's head start.
            last = layout.n_slices % plan.slices_per_chunk or plan.slices_per_chunk
            before_last = pacer.duration(plan.chunk_bytes(layout.n_slices - last))
            record = dataclasses.replace(record, daq_time=time.time() + pacer.delay() + before_last)
        key = f"{plan.run_id}/{record.number:05d}".encode()
        unacknowledged = _Countdown(n_chunks)
        started = time.monotonic()

        def delivered(nbytes: int, n_slices: int) -> None:
            metrics.chunks.inc()
            metrics.bytes.inc(nbytes)
            metrics.slices.inc(n_slices)
            if unacknowledged.tick():
                metrics.files.inc()
                metrics.dropped_samples.inc(layout.remainder)

        for index, chunk in enumerate(chunk_record(record, plan)):
            nbytes = plan.chunk_bytes(chunk.n_slices)
            await pacer.pace(nbytes)
            spread = partition_for(
                file_number=record.number, chunk_index=index, partitions=len(self._partitions)
            )
            await self._sender.send(
                chunk.to_bytes(),
                key=key,
                partition=self._partitions[spread],
                on_delivered=functools.partial(delivered, nbytes, chunk.n_slices),
            )
        self.handed += 1
        _log.info(
            "Sent a file.",
            file=record.source,
            file_number=record.number,
            slices=layout.n_slices,
            dropped_samples=layout.remainder,
            seconds=round(time.monotonic() - started, 3),
            lag_seconds=round(pacer.lag, 3),
        )

    def _start_pacing(self, pair_bytes: int) -> Pacer:
        settings = self._settings
        rate: float | None
        if settings.as_fast_as_possible:
            rate = None
        elif settings.mb_per_s is not None:
            rate = settings.mb_per_s * 1e6
        else:
            rate = pair_bytes / settings.seconds_per_pair
        self._pacer = Pacer(
            bytes_per_second=rate,
            warn_after_seconds=pair_bytes / rate if rate else float("inf"),
            on_lag=self._metrics.schedule_lag.set,
        )
        return self._pacer


class _Countdown:
    """Counts acknowledgements down to the one that completes a file."""

    def __init__(self, count: int) -> None:
        self._count = count

    def tick(self) -> bool:
        """Count one; True when it was the last."""
        self._count -= 1
        return self._count == 0
