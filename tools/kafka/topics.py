"""Create the project's Kafka topics (quaxspec.topics) on a broker; existing ones are kept.

Security settings (TLS, SASL) come from the environment as for every service (QUAX_KAFKA_*).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from quaxspec.settings import KafkaSettings
from quaxspec.topics import ALL_TOPICS

app = typer.Typer(add_completion=False)


async def create_topics(bootstrap: str, replication: int, prefix: str = "") -> list[str]:
    """Create every missing topic (names preceded by ``prefix``); return the names created."""
    admin = AIOKafkaAdminClient(**KafkaSettings(bootstrap_servers=bootstrap).client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in ALL_TOPICS if prefix + spec.name not in existing]
        for spec in missing:
            name = prefix + spec.name
            topic = NewTopic(name, spec.partitions, replication, topic_configs=spec.config)
            try:
                await admin.create_topics([topic])
            except TopicAlreadyExistsError:
                continue
        return [prefix + spec.name for spec in missing]
    finally:
        await admin.close()


@app.command()
def main(
    bootstrap: Annotated[str, typer.Option(help="Kafka bootstrap servers.")] = "127.0.0.1:9092",
    replication: Annotated[int, typer.Option(help="Replication factor.")] = 1,
    prefix: Annotated[str, typer.Option(help="Prefix of every topic name.")] = "",
) -> None:
    """Create the quax topics with their partitions, retention and size limits."""
    created = asyncio.run(create_topics(bootstrap, replication, prefix))
    for spec in ALL_TOPICS:
        name = prefix + spec.name
        state = "created" if name in created else "exists"
        typer.echo(f"topic {name:16s} {spec.partitions} partitions  {state}")


if __name__ == "__main__":
    app()
