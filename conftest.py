"""Fixtures shared by every test directory: a real Apache Kafka broker and a real object store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from localkafka import LocalKafka
from objectstore import LocalS3


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """One broker for the whole session, with the project's topics created (no prefix).

    Tests that need topics of their own call ``kafka.create_topics(prefix)``.
    """
    broker = LocalKafka.fresh(tmp_path_factory.mktemp("kafka"))
    broker.run("start")
    try:
        broker.run("topics")
        yield broker
    finally:
        broker.run("stop")


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3]:
    """One SeaweedFS server with its S3 gateway for the whole session (tools/s3/install.sh)."""
    store = LocalS3(tmp_path_factory.mktemp("s3"))
    store.start()
    try:
        yield store
    finally:
        store.stop()
