"""The Faust app both services build: broker, security and limits from the settings."""

from __future__ import annotations

from pathlib import Path

from quaxfaust.app import broker_credentials, broker_url, create_app
from quaxfaust.settings import FaustServiceSettings
from quaxspec.settings import KafkaSettings


class _Settings(FaustServiceSettings):
    app_id: str = "probe"
    metrics_port: int = 0
    data_dir: Path = Path("/tmp/quaxfaust-probe")


def test_plaintext_has_no_credentials_and_every_server_is_a_url() -> None:
    kafka = KafkaSettings(bootstrap_servers="a:9092, b:9093")
    assert broker_url(kafka) == "kafka://a:9092;kafka://b:9093"
    assert broker_credentials(kafka) is None


def test_scram_over_tls_gives_the_app_the_user_and_mechanism(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cr3t\n")
    kafka = KafkaSettings(
        security_protocol="SASL_SSL", sasl_username="quax", sasl_password_file=secret
    )
    credentials = broker_credentials(kafka)
    assert credentials is not None
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert (credentials.username, credentials.password) == ("quax", "s3cr3t")


def test_tls_alone_gives_an_ssl_context() -> None:
    credentials = broker_credentials(KafkaSettings(security_protocol="SSL"))
    assert credentials is not None
    assert credentials.protocol.value == "SSL"


def test_the_app_takes_its_limits_from_the_settings_and_options_override() -> None:
    settings = _Settings(
        kafka=KafkaSettings(max_message_bytes=3_000_000, session_timeout_seconds=8),
        stream_buffer=7,
    )
    app = create_app(settings, store="rocksdb://", table_standby_replicas=0)
    conf = app.conf
    assert conf.id == "probe"
    assert str(conf.store) == "rocksdb:"
    assert conf.table_standby_replicas == 0
    assert conf.producer_max_request_size == 3_000_000
    assert conf.consumer_max_fetch_size == 3_000_000
    assert conf.stream_buffer_maxsize == 7
    assert conf.broker_session_timeout == 8
    assert conf.broker_heartbeat_interval == 2
    assert conf.consumer_auto_offset_reset == "earliest"
    assert not conf.web_enabled
    assert str(conf.datadir).startswith("/tmp/quaxfaust-probe")
