"""The local Apache Kafka broker that tools/kafka brings up, exercised with aiokafka."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from localkafka import LocalKafka

from quaxspec.topics import ALL_TOPICS, MAX_MESSAGE_BYTES, RAW, RUNS

pytestmark = pytest.mark.kafka


async def _round_trip(bootstrap: str, payload: bytes) -> bytes:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        max_request_size=MAX_MESSAGE_BYTES,
    )
    await producer.start()
    try:
        sent = await producer.send_and_wait(RAW.name, payload, key=b"run")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_max_bytes=2 * MAX_MESSAGE_BYTES,
    )
    await consumer.start()
    try:
        partition = TopicPartition(RAW.name, sent.partition)
        consumer.assign([partition])
        consumer.seek(partition, sent.offset)
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
        return bytes(record.value)
    finally:
        await consumer.stop()


async def _topic_settings(bootstrap: str) -> dict[str, tuple[int, dict[str, str]]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [spec.name for spec in ALL_TOPICS]
        described = await admin.describe_topics(names)
        partitions = {t["topic"]: len(t["partitions"]) for t in described}
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
        configs: dict[str, dict[str, str]] = {}
        for response in responses:
            for _, _, _, name, entries in response.resources:
                configs[name] = {entry[0]: entry[1] for entry in entries}
        return {name: (partitions[name], configs[name]) for name in names}
    finally:
        await admin.close()


def _processes_using(directory: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(directory).encode() in cmdline:
                found.append(int(entry.name))
    return found


def test_broker_starts_from_an_empty_folder_carries_900_kb_and_stops_cleanly(tmp_path):
    broker = LocalKafka.fresh(tmp_path / "kafka")
    assert not broker.directory.exists()
    broker.run("start")
    pid = broker.pid
    try:
        assert "created" in broker.run("topics").stdout
        payload = os.urandom(900 * 1024)

        assert asyncio.run(_round_trip(broker.bootstrap, payload)) == payload

        settings = asyncio.run(_topic_settings(broker.bootstrap))
        for spec in ALL_TOPICS:
            partitions, config = settings[spec.name]
            assert partitions == spec.partitions
            for key, value in spec.config.items():
                assert config[key] == value, (spec.name, key)
        assert settings[RUNS.name][1]["cleanup.policy"] == "compact"
        assert "exists" in broker.run("topics").stdout  # creating twice is harmless
    finally:
        broker.run("stop")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert _processes_using(broker.directory) == []
    assert not (broker.directory / "kafka.pid").exists()
