"""The Faust app of the aggregator."""

from __future__ import annotations

import faust

from quax_aggregator.settings import AggregatorSettings

__all__ = ["create_app"]


def create_app(settings: AggregatorSettings) -> faust.App:
    """A Faust app whose tables live next to the partials they are built from."""
    kafka = settings.kafka
    return faust.App(
        settings.app_id,
        broker=kafka.faust_broker,
        broker_credentials=kafka.faust_credentials(),
        store=settings.store,
        datadir=str(settings.data_dir),
        web_enabled=False,
        topic_disable_leader=True,
        table_standby_replicas=0,
        producer_max_request_size=kafka.max_message_bytes,
        consumer_max_fetch_size=kafka.max_message_bytes,
        stream_buffer_maxsize=settings.stream_buffer,
        broker_commit_interval=settings.commit_interval_seconds,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=kafka.session_timeout_seconds,
        topic_replication_factor=kafka.replication_factor,
        broker_heartbeat_interval=kafka.session_timeout_seconds / 4,
    )
