"""Create the project's Kafka topics (quaxspec.topics) on a broker; existing ones are kept.

The aggregator's changelog topics are among them, named after its app id.

Security settings (TLS, SASL) come from the environment as for every service (QUAX_KAFKA_*).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from quaxspec.settings import KafkaSettings
from quaxspec.topics import ALL_TOPICS, TopicSpec, changelog_topics

app = typer.Typer(add_completion=False)


def project_topics(prefix: str, aggregator_app_id: str) -> list[tuple[str, TopicSpec]]:
    """Every topic of one pipeline with its name: the prefixed topics and the changelogs."""
    named = [(prefix + spec.name, spec) for spec in ALL_TOPICS]
    return named + [(spec.name, spec) for spec in changelog_topics(aggregator_app_id)]


async def create_topics(
    bootstrap: str, replication: int, prefix: str = "", aggregator_app_id: str = "quax-aggregator"
) -> list[str]:
    """Create every missing topic (names preceded by ``prefix``); return the names created."""
    admin = AIOKafkaAdminClient(**KafkaSettings(bootstrap_servers=bootstrap).client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        topics = project_topics(prefix, aggregator_app_id)
        missing = [(name, spec) for name, spec in topics if name not in existing]
        for name, spec in missing:
            topic = NewTopic(name, spec.partitions, replication, topic_configs=spec.config)
            try:
                await admin.create_topics([topic])
            except TopicAlreadyExistsError:
                continue
        return [name for name, _ in missing]
    finally:
        await admin.close()


@app.command()
def main(
    bootstrap: Annotated[str, typer.Option(help="Kafka bootstrap servers.")] = "127.0.0.1:9092",
    replication: Annotated[int, typer.Option(help="Replication factor.")] = 1,
    prefix: Annotated[str, typer.Option(help="Prefix of every topic name.")] = "",
    aggregator_app_id: Annotated[
        str, typer.Option(help="The aggregator's app id, which names its changelog topics.")
    ] = "quax-aggregator",
) -> None:
    """Create the quax topics with their partitions, retention and size limits."""
    created = asyncio.run(create_topics(bootstrap, replication, prefix, aggregator_app_id))
    for name, spec in project_topics(prefix, aggregator_app_id):
        state = "created" if name in created else "exists"
        typer.echo(f"topic {name:34s} {spec.partitions} partitions  {state}")


if __name__ == "__main__":
    app()
