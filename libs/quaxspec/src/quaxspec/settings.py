"""Settings shared by every service: where Kafka is and how topics are named."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from quaxspec.topics import MAX_MESSAGE_BYTES, TopicSpec

__all__ = ["KafkaSettings", "LoggingSettings"]


class KafkaSettings(BaseSettings):
    """Connection to the Kafka cluster (environment prefix ``QUAX_KAFKA_``)."""

    model_config = SettingsConfigDict(env_prefix="QUAX_KAFKA_", extra="ignore")

    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Comma-separated host:port list of Kafka brokers."
    )
    topic_prefix: str = Field(
        "", description="Prefix of every topic name, to run several pipelines on one cluster."
    )
    max_message_bytes: int = Field(
        MAX_MESSAGE_BYTES, description="Largest message produced or fetched (bytes)."
    )
    replication_factor: int = Field(
        1,
        ge=1,
        description="Replication of the topics a service creates itself (Faust changelogs).",
    )
    session_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A consumer silent this long is dropped and its partitions reassigned.",
    )

    def topic(self, spec: TopicSpec) -> str:
        """The full name of a project topic."""
        return f"{self.topic_prefix}{spec.name}"

    @property
    def faust_broker(self) -> str:
        """The broker URL list in Faust's ``kafka://host:port;...`` form."""
        return ";".join(f"kafka://{server.strip()}" for server in self.bootstrap_servers.split(","))


class LoggingSettings(BaseSettings):
    """Log format and level (environment prefix ``QUAX_LOG_``)."""

    model_config = SettingsConfigDict(env_prefix="QUAX_LOG_", extra="ignore")

    json_format: bool = Field(False, description="One JSON object per line (for deployment).")
    level: str = Field("INFO", description="Minimum level: DEBUG, INFO, WARNING, ERROR.")
