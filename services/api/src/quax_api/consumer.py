"""Follow quax.runs and quax.spectra: restore the state at start, then feed the store and the hub.

Every API replica reads every partition (no consumer group): each one serves the whole
state. At start it reads quax.runs from the beginning (compacted, so one record per run)
and the tail of quax.spectra, and becomes ready once it has reached the end offsets it
found at start.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Counter, Gauge

from quax_api.hub import Hub
from quax_api.settings import ApiSettings
from quax_api.store import SpectrumStore
from quaxspec.messages import MessageDecodeError
from quaxspec.spectra import FileSpectrum, RunSpectrum
from quaxspec.topics import DEADLETTER, RUNS, SPECTRA

__all__ = ["follow", "follow_forever"]

log = structlog.get_logger("quax.api")

UPDATES = Counter("quax_api_updates", "Spectra taken from Kafka, by kind.", ["kind"])
REJECTS = Counter("quax_api_rejects", "Messages that did not decode, by kind.", ["kind"])
#: The longest wait between two attempts to follow Kafka (seconds).
MAX_RETRY_SECONDS = 30.0
LATENCY = Gauge(
    "quax_api_last_update_latency_seconds",
    "From the DAQ time of the newest file to the API receiving its spectrum.",
)


async def follow_forever(
    settings: ApiSettings, *, store: SpectrumStore, hub: Hub, ready: asyncio.Event
) -> None:
    """Follow the topics until cancelled; on a failure, say so and start again.

    The wait doubles from 1 s to 30 s while attempts keep failing, and is back to 1 s after
    an attempt that followed for longer than the longest wait.
    """
    delay = 1.0
    while True:
        started = time.monotonic()
        try:
            await follow(settings, store=store, hub=hub, ready=ready)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the API keeps serving what it has while Kafka is away
            if time.monotonic() - started > MAX_RETRY_SECONDS:
                delay = 1.0
            log.error("Following Kafka failed; retrying.", error=repr(error), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(2 * delay, MAX_RETRY_SECONDS)


async def follow(
    settings: ApiSettings, *, store: SpectrumStore, hub: Hub, ready: asyncio.Event
) -> None:
    """Run until cancelled."""
    kafka = settings.kafka
    runs_topic, spectra_topic = kafka.topic(RUNS), kafka.topic(SPECTRA)
    dead_topic = kafka.topic(DEADLETTER)
    consumer = AIOKafkaConsumer(
        **kafka.client_options(),
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=kafka.max_message_bytes,
        fetch_max_bytes=4 * kafka.max_message_bytes,
    )
    await consumer.start()
    try:
        pending = await _restore_positions(
            consumer, settings, (runs_topic, dead_topic), spectra_topic
        )
        log.info("Restoring runs and recent spectra.", partitions_to_read=len(pending))
        caught_up = False  # this attempt has read what the topics held when it started
        while True:
            if not caught_up and not pending:
                caught_up = True
                if not ready.is_set():
                    ready.set()
                    log.info("Restored; serving live updates.", runs=len(store.run_ids()))
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    if record.topic == dead_topic:
                        store.add_reject(record.key)
                        continue
                    _take(
                        record.topic == runs_topic, record.value, store, hub,
                        publish=ready.is_set(), current=caught_up,
                    )  # fmt: skip
            for partition, end in list(pending.items()):
                if await consumer.position(partition) >= end:
                    del pending[partition]
    finally:
        await consumer.stop()


async def _restore_positions(
    consumer: AIOKafkaConsumer,
    settings: ApiSettings,
    from_start: tuple[str, ...],
    spectra_topic: str,
) -> dict[TopicPartition, int]:
    """Assign every partition, seek, and return the end offsets still to be reached.

    Topics in ``from_start`` are read whole (the compacted runs, the small dead-letter
    topic); of the spectra only the tail is read.
    """
    topics = [*from_start, spectra_topic]
    admin = AIOKafkaAdminClient(**settings.kafka.client_options())
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
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
    consumer.assign(partitions)
    begins = await consumer.beginning_offsets(partitions)
    ends = await consumer.end_offsets(partitions)
    for tp in partitions:
        whole = tp.topic in from_start
        tail = max(begins[tp], ends[tp] - settings.restore_file_messages)
        consumer.seek(tp, begins[tp] if whole else tail)
    return {tp: ends[tp] for tp in partitions}


def _take(
    is_run: bool,
    value: bytes | None,
    store: SpectrumStore,
    hub: Hub,
    *,
    publish: bool,
    current: bool,
) -> None:
    """Store one spectrum; send it to the WebSocket clients if it is new and the API serves
    (``publish``); measure its delay only if it is current, not read again after a
    reconnect (a replayed file's age is not the pipeline's latency)."""
    kind = "run" if is_run else "file"
    try:
        if value is None:
            raise MessageDecodeError("empty record")
        if is_run:
            run = RunSpectrum.from_bytes(value)
            new, run_id = store.add_run(run), run.run_id
        else:
            spectrum = FileSpectrum.from_bytes(value)
            new, run_id = store.add_file(spectrum), spectrum.run_id
            if current:
                LATENCY.set(max(time.time() - spectrum.daq_time, 0.0))
    except MessageDecodeError as error:
        REJECTS.labels(kind=kind).inc()
        log.warning("Ignored a message that did not decode.", kind=kind, reason=str(error))
        return
    except Exception as error:  # one record never stops the follower (it would meet it again)
        REJECTS.labels(kind=kind).inc()
        log.exception("Ignored a message that could not be taken.", kind=kind, error=repr(error))
        return
    UPDATES.labels(kind=kind).inc()
    if new and publish:
        hub.publish(run_id, kind, value)
