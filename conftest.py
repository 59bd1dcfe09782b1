"""Fixtures shared by every test directory: a real local Apache Kafka broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from localkafka import LocalKafka


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
