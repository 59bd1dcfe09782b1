"""A Faust app as both services configure it, and the broker address and credentials."""

from __future__ import annotations

from typing import Any

import faust

from quaxfaust.settings import FaustServiceSettings
from quaxspec.settings import KafkaSettings

__all__ = ["broker_credentials", "broker_url", "create_app"]


def create_app(settings: FaustServiceSettings, **options: Any) -> faust.App:
    """An app without its web server, reading from the earliest offset, with message limits
    above the largest message; ``options`` adds or overrides Faust settings (the store)."""
    kafka = settings.kafka
    defaults: dict[str, Any] = {
        "broker": broker_url(kafka),
        "broker_credentials": broker_credentials(kafka),
        "store": "memory://",
        "datadir": str(settings.data_dir),
        "web_enabled": False,
        "topic_disable_leader": True,
        "producer_max_request_size": kafka.max_message_bytes,
        "consumer_max_fetch_size": kafka.max_message_bytes,
        "stream_buffer_maxsize": settings.stream_buffer,
        "broker_commit_interval": settings.commit_interval_seconds,
        "consumer_auto_offset_reset": "earliest",
        "broker_session_timeout": kafka.session_timeout_seconds,
        "topic_replication_factor": kafka.replication_factor,
        "broker_heartbeat_interval": kafka.session_timeout_seconds / 4,
    }
    return faust.App(settings.app_id, **(defaults | options))


def broker_url(kafka: KafkaSettings) -> str:
    """The broker list in Faust's ``kafka://host:port;...`` form."""
    return ";".join(f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(","))


def broker_credentials(kafka: KafkaSettings) -> faust.types.auth.CredentialsT | None:
    """The Kafka settings' security for a Faust app (its ``broker_credentials``)."""
    if kafka.security_protocol.startswith("SASL"):
        # The protocol follows the context: SASL_SSL with one, SASL_PLAINTEXT without.
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.password(),
            mechanism=kafka.sasl_mechanism,
            ssl_context=kafka.ssl_context(),
        )
    if kafka.uses_tls:
        return faust.SSLCredentials(kafka.ssl_context())
    return None
