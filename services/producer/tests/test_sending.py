"""The bounded sender: at most N unacknowledged messages, delivery errors raised, send times."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiokafka.errors import KafkaTimeoutError
from prometheus_client import CollectorRegistry

from quax_producer.metrics import Metrics
from quax_producer.sending import ChunkSender


class SlowProducer:
    """Stands for AIOKafkaProducer: deliveries complete only when the test says so."""

    def __init__(self) -> None:
        self.deliveries: list[asyncio.Future[object]] = []

    async def send(self, topic, value, *, key, partition):
        future = asyncio.get_running_loop().create_future()
        self.deliveries.append(future)
        return future


def _sender(producer, max_in_flight=3):
    metrics = Metrics(registry=CollectorRegistry())
    sender = ChunkSender(
        producer=producer, topic="t", max_in_flight=max_in_flight, send_seconds=metrics.send_seconds
    )
    return sender, metrics


async def test_a_slow_broker_holds_the_sender_back():
    producer, delivered = SlowProducer(), []
    sender, metrics = _sender(producer)

    async def send_ten():
        for k in range(10):
            await sender.send(
                b"x", key=b"k", partition=0, on_delivered=lambda k=k: delivered.append(k)
            )

    sending = asyncio.create_task(send_ten())
    await asyncio.sleep(0.01)
    assert len(producer.deliveries) == 3
    assert not sending.done()

    for k in range(10):
        await asyncio.sleep(0.001)  # the sender hands over what it may
        assert sender.in_flight <= 3
        producer.deliveries[k].set_result(None)  # the broker acknowledges the oldest
    await sending
    await sender.flush()

    assert delivered == list(range(10))
    assert metrics.value("quax_producer_send_seconds_count") == 10


async def test_a_failed_delivery_is_raised_by_flush():
    producer = SlowProducer()
    sender, _ = _sender(producer)
    await sender.send(b"x", key=b"k", partition=0, on_delivered=lambda: None)
    await sender.send(b"y", key=b"k", partition=0, on_delivered=pytest.fail)
    producer.deliveries[0].set_result(None)
    producer.deliveries[1].set_exception(RuntimeError("broker said no"))

    with pytest.raises(RuntimeError, match="broker said no"):
        await sender.flush()
    assert sender.in_flight == 0


async def test_a_delivery_kafka_never_answers_fails_after_the_timeout():
    # A broker that is away: the client neither acknowledges nor fails the delivery.
    producer = SlowProducer()
    metrics = Metrics(registry=CollectorRegistry())
    sender = ChunkSender(
        producer=producer,
        topic="t",
        max_in_flight=4,
        send_seconds=metrics.send_seconds,
        timeout=0.2,
    )
    await sender.send(b"x", key=b"k", partition=0, on_delivered=lambda: None)

    with pytest.raises(KafkaTimeoutError, match=r"acknowledgement: no answer from Kafka within"):
        await asyncio.wait_for(sender.flush(), 5)
    assert not producer.deliveries[0].cancelled()  # the client's own future is left alone


class StallingProducer:
    """Takes each chunk only after a while, then never delivers it (a broker going away)."""

    def __init__(self, stall: float) -> None:
        self.stall = stall

    async def send(self, topic, value, *, key, partition):
        await asyncio.sleep(self.stall)
        return asyncio.get_running_loop().create_future()


async def test_taking_and_delivering_a_chunk_share_one_deadline():
    metrics = Metrics(registry=CollectorRegistry())
    sender = ChunkSender(
        producer=StallingProducer(0.3),
        topic="t",
        max_in_flight=4,
        send_seconds=metrics.send_seconds,
        timeout=0.5,
    )
    await sender.send(b"x", key=b"k", partition=0, on_delivered=lambda: None)

    with pytest.raises(KafkaTimeoutError) as failed:
        await asyncio.wait_for(sender.flush(), 5)
    # The acknowledgement was given what the 0.5 s had left after the 0.3 s hand-off.
    left = float(re.search(r"within (\S+) s", str(failed.value))[1])
    assert left <= 0.2
