"""Read quax.spectra and quax.runs, buffer, and flush to the archive; commit after each flush.

One archiver owns the archive: it is assigned every partition of both topics (no group
rebalance; the group id only holds the committed offsets, so the lag is visible) and
resumes from the positions the archive holds (quax_archiver.writer). A record that does
not decode is sent to the dead-letter topic with the reason and the stream goes on.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from quax_archiver.metrics import ArchiverMetrics
from quax_archiver.objectstore import ObjectStoreWriter
from quax_archiver.settings import ArchiverSettings
from quax_archiver.writer import ArchiveWriter, Batch, Positions
from quaxspec.archive import open_archive
from quaxspec.deadletter import Source, dead_letter
from quaxspec.messages import MessageDecodeError
from quaxspec.spectra import FileSpectrum, RunSpectrum
from quaxspec.topics import DEADLETTER, RUNS, SPECTRA

__all__ = ["Archiver"]

log = structlog.get_logger("quax.archiver")


class Archiver:
    """The consume–buffer–flush–commit loop."""

    def __init__(self, settings: ArchiverSettings, metrics: ArchiverMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        kafka = settings.kafka
        self.spectra_topic, self.runs_topic = kafka.topic(SPECTRA), kafka.topic(RUNS)
        self.writer: ArchiveWriter | ObjectStoreWriter = (
            ArchiveWriter(settings.directory)
            if settings.s3_url is None
            else ObjectStoreWriter(open_archive(settings.s3_url, settings.s3))
        )
        self.consumer = AIOKafkaConsumer(
            **kafka.client_options(),
            group_id=settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=kafka.max_message_bytes,
            fetch_max_bytes=4 * kafka.max_message_bytes,
        )
        self.producer = AIOKafkaProducer(
            **kafka.client_options(), max_request_size=kafka.max_message_bytes
        )
        self.batch = Batch()

    async def run(self, stop: asyncio.Event) -> None:
        """Archive until ``stop`` is set; then flush what is buffered and commit."""
        positions = await asyncio.to_thread(self.writer.recover)
        await self.consumer.start()
        await self.producer.start()
        try:
            await self._seek(positions)
            log.info("Archiving.", archive=self.settings.where)
            while not stop.is_set():
                batches = await self.consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        await self._take(record)
                self.metrics.buffered.set(self.batch.records)
                self.metrics.oldest.set(self.batch.age())
                if self._due():
                    await self.flush()
            await self.flush()
            log.info("Stopped; everything read is archived.")
        finally:
            await self.producer.stop()
            await self.consumer.stop()

    async def _seek(self, positions: Positions) -> None:
        partitions = await self._partitions((self.spectra_topic, self.runs_topic))
        self.consumer.assign(partitions)
        begins = await self.consumer.beginning_offsets(partitions)
        for tp in partitions:
            start = positions.get(tp.topic, {}).get(tp.partition, begins[tp])
            if start < begins[tp]:
                lost = begins[tp] - start
                self.metrics.lost.inc(lost)
                log.error(
                    "Records left Kafka's retention before they were archived.",
                    topic=tp.topic, partition=tp.partition, lost=lost, from_offset=start,
                )  # fmt: skip
                start = begins[tp]
            self.consumer.seek(tp, start)

    async def _partitions(self, topics: tuple[str, ...]) -> list[TopicPartition]:
        admin = AIOKafkaAdminClient(**self.settings.kafka.client_options())
        await admin.start()
        try:
            described = await admin.describe_topics(list(topics))
        finally:
            await admin.close()
        partitions = [
            TopicPartition(topic["topic"], partition["partition"])
            for topic in described
            for partition in topic["partitions"]
        ]
        missing = set(topics) - {tp.topic for tp in partitions}
        if missing:
            raise RuntimeError(f"topics {sorted(missing)} do not exist")
        return sorted(partitions)

    async def _take(self, record: ConsumerRecord[bytes, bytes]) -> None:
        self.batch.advance(record.topic, record.partition, record.offset)
        is_run = record.topic == self.runs_topic
        kind = "run" if is_run else "file"
        try:
            if record.value is None:
                raise MessageDecodeError("empty record")
            if is_run:
                run = RunSpectrum.from_bytes(record.value)
                self.batch.add_run(run, record.value, record.partition, record.offset)
            else:
                spectrum = FileSpectrum.from_bytes(record.value)
                self.batch.add_file(spectrum, record.partition, record.offset)
        except MessageDecodeError as error:
            self.metrics.rejects.labels(kind=kind).inc()
            await dead_letter(
                self._send_dead_letter, key=record.key, value=record.value, reason=str(error),
                service="archiver", source=Source(record.topic, record.partition, record.offset),
            )  # fmt: skip

    async def _send_dead_letter(self, **message: object) -> None:
        await self.producer.send_and_wait(self.settings.kafka.topic(DEADLETTER), **message)

    def _due(self) -> bool:
        """Whether the batch is full, or its oldest record has waited ROLL_SECONDS."""
        full = self.batch.array_bytes >= self.settings.roll_megabytes * 1e6
        return full or self.batch.age() >= self.settings.roll_seconds

    async def flush(self) -> None:
        """Make the batch durable, then commit its offsets to the group."""
        batch, self.batch = self.batch, Batch()
        if not batch:
            return
        started = time.perf_counter()
        written = await asyncio.to_thread(self.writer.flush, batch)
        self.metrics.flush_seconds.observe(time.perf_counter() - started)
        self.metrics.last_flush.set_to_current_time()
        self.metrics.files.inc(written)
        self.metrics.rows.labels(kind="file").inc(len(batch.files))
        self.metrics.rows.labels(kind="run").inc(len(batch.runs))
        self.metrics.buffered.set(self.batch.records)
        self.metrics.oldest.set(self.batch.age())
        log.info(
            "Flushed to the archive.",
            files=len(batch.files), runs=len(batch.runs), parquet_files=written,
        )  # fmt: skip
        offsets = {
            TopicPartition(topic, partition): offset
            for topic, parts in batch.positions.items()
            for partition, offset in parts.items()
        }
        try:
            await self.consumer.commit(offsets)
        except Exception as error:  # the archive's positions stay the truth
            log.warning("Committing the archived offsets failed.", error=repr(error))
