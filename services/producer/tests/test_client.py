"""The producer's librdkafka client: deliveries as futures, errors sorted into curable or not."""

from __future__ import annotations

import asyncio
import socket
import uuid

import confluent_kafka
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from quax_producer.client import ClientError, RawProducer
from quax_producer.delivery import _curable

_E = confluent_kafka.KafkaError


@pytest.mark.parametrize(
    ("code", "curable"),
    [
        (_E._MSG_TIMED_OUT, True),  # a broker away
        (_E._TRANSPORT, True),
        (_E.NOT_LEADER_FOR_PARTITION, True),  # a broker restarting
        (_E.OUT_OF_ORDER_SEQUENCE_NUMBER, True),  # ends that client only: a new one goes on
        (_E.MSG_SIZE_TOO_LARGE, False),
        (_E.TOPIC_AUTHORIZATION_FAILED, False),
        (_E.SASL_AUTHENTICATION_FAILED, False),
        (_E._UNKNOWN_TOPIC, True),  # the producer checks its topics when it connects
    ],
)
def test_errors_that_waiting_cannot_cure_end_the_producer(code: int, curable: bool) -> None:
    error = ClientError(_E(code), what="delivery")
    assert isinstance(error, KafkaError)  # handled where aiokafka's errors are
    assert error.curable is curable
    assert _curable(error) is curable
    assert f"delivery: {_E(code).name()}: " in str(error)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_delivery_no_broker_acknowledges_fails_by_its_timeout_as_curable() -> None:
    producer = RawProducer(
        {"bootstrap.servers": f"127.0.0.1:{_free_port()}", "message.timeout.ms": 1000}
    )
    try:
        delivery = await producer.send("quax.raw", b"x", key=b"k", partition=0)
        with pytest.raises(ClientError) as failed:
            await asyncio.wait_for(delivery, 10)
        assert failed.value.code == _E._MSG_TIMED_OUT
        assert failed.value.curable
    finally:
        await producer.stop(1.0)


async def _topic(bootstrap: str, partitions: int, **config: str) -> str:
    name = f"test-client-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config)])
    finally:
        await admin.close()
    return name


async def _read(bootstrap: str, topic: str, partitions: int, count: int) -> dict[bytes, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        found: dict[bytes, int] = {}
        async with asyncio.timeout(30):
            while len(found) < count:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    found |= {record.key: tp.partition for record in records}
        return found
    finally:
        await consumer.stop()


@pytest.mark.kafka
async def test_messages_arrive_where_sent_and_keyed_ones_where_aiokafka_puts_them(kafka) -> None:
    # quax.progress is compacted by run: a run's records must stay in the partition the
    # earlier client (aiokafka, murmur2 like Java's) chose for them.
    topic = await _topic(kafka.bootstrap, 4)
    producer = RawProducer({"bootstrap.servers": kafka.bootstrap, "partitioner": "murmur2_random"})
    keys = [f"run-{n}".encode() for n in range(24)]
    try:
        assert await producer.partitions_for(topic, timeout=10) == {0, 1, 2, 3}
        deliveries = [await producer.send(topic, b"v", key=key) for key in keys]
        deliveries.append(await producer.send(topic, b"v", key=b"pinned", partition=3))
        await asyncio.wait_for(asyncio.gather(*deliveries), 30)
    finally:
        await producer.stop(10.0)
    found = await _read(kafka.bootstrap, topic, 4, len(keys) + 1)
    murmur2 = DefaultPartitioner()
    assert {key: found[key] for key in keys} == {
        key: murmur2(key, [0, 1, 2, 3], [0, 1, 2, 3]) for key in keys
    }
    assert found[b"pinned"] == 3
    assert len(set(found.values())) > 1  # the keys were spread: the comparison says something


@pytest.mark.kafka
async def test_a_message_the_topic_refuses_fails_as_not_curable(kafka) -> None:
    topic = await _topic(kafka.bootstrap, 1, **{"max.message.bytes": "1000"})
    producer = RawProducer({"bootstrap.servers": kafka.bootstrap, "enable.idempotence": True})
    try:
        refused = await producer.send(topic, bytes(5000), key=b"k", partition=0)
        with pytest.raises(ClientError) as failed:
            await asyncio.wait_for(refused, 30)
        assert failed.value.code == _E.MSG_SIZE_TOO_LARGE
        assert not failed.value.curable
        # The client goes on: a message the topic takes is delivered.
        await asyncio.wait_for(await producer.send(topic, bytes(100), key=b"k", partition=0), 30)
    finally:
        await producer.stop(10.0)
    asking = RawProducer({"bootstrap.servers": kafka.bootstrap})
    try:
        with pytest.raises(ClientError) as partitions:
            await asking.partitions_for(f"{topic}-missing", timeout=10)
    finally:
        await asking.stop(1.0)
    assert partitions.value.code in (_E.UNKNOWN_TOPIC_OR_PART, _E._UNKNOWN_TOPIC)
