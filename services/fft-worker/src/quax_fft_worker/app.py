"""The Faust app of the FFT worker: one agent on the raw topic, no tables."""

from __future__ import annotations

import faust

from quax_fft_worker.settings import FftWorkerSettings

__all__ = ["create_app"]


def create_app(settings: FftWorkerSettings) -> faust.App:
    """A Faust app sized for raw chunks: small prefetch, message limits above the chunk size."""
    kafka = settings.kafka
    return faust.App(
        settings.app_id,
        broker=kafka.faust_broker,
        broker_credentials=kafka.faust_credentials(),
        store="memory://",
        datadir=str(settings.data_dir),
        web_enabled=False,
        topic_disable_leader=True,
        producer_max_request_size=kafka.max_message_bytes,
        consumer_max_fetch_size=kafka.max_message_bytes,
        stream_buffer_maxsize=settings.stream_buffer,
        broker_commit_interval=settings.commit_interval_seconds,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=kafka.session_timeout_seconds,
        topic_replication_factor=kafka.replication_factor,
        broker_heartbeat_interval=kafka.session_timeout_seconds / 4,
    )
