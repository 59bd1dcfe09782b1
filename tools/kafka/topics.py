"""Create the project's Kafka topics (quaxspec.topics) on a broker; existing ones are kept."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from quaxspec.topics import ALL_TOPICS

app = typer.Typer(add_completion=False)


async def create_topics(bootstrap: str, replication: int) -> list[str]:
    """Create every missing topic; return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in ALL_TOPICS if spec.name not in existing]
        for spec in missing:
            topic = NewTopic(spec.name, spec.partitions, replication, topic_configs=spec.config)
            try:
                await admin.create_topics([topic])
            except TopicAlreadyExistsError:
                continue
        return [spec.name for spec in missing]
    finally:
        await admin.close()


@app.command()
def main(
    bootstrap: Annotated[str, typer.Option(help="Kafka bootstrap servers.")] = "127.0.0.1:9092",
    replication: Annotated[int, typer.Option(help="Replication factor.")] = 1,
) -> None:
    """Create the quax topics with their partitions, retention and size limits."""
    created = asyncio.run(create_topics(bootstrap, replication))
    for spec in ALL_TOPICS:
        state = "created" if spec.name in created else "exists"
        typer.echo(f"topic {spec.name:16s} {spec.partitions} partitions  {state}")


if __name__ == "__main__":
    app()
