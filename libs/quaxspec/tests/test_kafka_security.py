"""Kafka security settings: what each client is given, and that secrets stay secret."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from quaxspec.settings import KafkaSettings


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    options = KafkaSettings(bootstrap_servers="k:9092").client_options()
    assert options == {"bootstrap_servers": "k:9092", "security_protocol": "PLAINTEXT"}


def test_scram_over_tls_gives_every_client_the_user_and_a_verifying_context(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cr3t-from-a-file\n")
    settings = KafkaSettings(
        security_protocol="SASL_SSL", sasl_username="quax", sasl_password_file=secret
    )
    options = settings.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "quax",
        "s3cr3t-from-a-file",
    )
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_librdkafka_gets_the_same_security_as_the_other_clients(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cr3t\n")
    settings = KafkaSettings(
        bootstrap_servers="k:9093",
        security_protocol="SASL_SSL",
        sasl_username="quax",
        sasl_password_file=secret,
        ssl_cafile=tmp_path / "ca.pem",
        ssl_certfile=tmp_path / "client.pem",
        ssl_keyfile=tmp_path / "client.key",
    )
    assert settings.librdkafka_config() == {
        "bootstrap.servers": "k:9093",
        "security.protocol": "SASL_SSL",
        "ssl.endpoint.identification.algorithm": "https",  # the host name is checked
        "ssl.ca.location": str(tmp_path / "ca.pem"),
        "ssl.certificate.location": str(tmp_path / "client.pem"),
        "ssl.key.location": str(tmp_path / "client.key"),
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "quax",
        "sasl.password": "s3cr3t",
    }
    plain = KafkaSettings(bootstrap_servers="k:9092").librdkafka_config()
    assert plain == {"bootstrap.servers": "k:9092", "security.protocol": "PLAINTEXT"}
    system_cas = KafkaSettings(security_protocol="SSL").librdkafka_config()
    assert system_cas["ssl.ca.location"] == "probe"  # the system's CAs, as ssl_context()


def test_a_password_is_never_shown_with_the_settings() -> None:
    settings = KafkaSettings(
        security_protocol="SASL_PLAINTEXT", sasl_username="quax", sasl_password="hunter2-xyz"
    )
    assert "hunter2-xyz" not in repr(settings)
    assert "hunter2-xyz" not in str(settings.model_dump())
    assert "hunter2-xyz" not in settings.model_dump_json()
    assert settings.password() == "hunter2-xyz"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"security_protocol": "SASL_SSL"}, "needs sasl_username"),
        (
            {"security_protocol": "SASL_SSL", "sasl_username": "quax"},
            "needs sasl_password or sasl_password_file",
        ),
        ({"security_protocol": "SSL", "ssl_certfile": "c.pem"}, "go together"),
        ({"security_protocol": "TLS"}, "PLAINTEXT"),
    ],
)
def test_incomplete_security_is_refused_with_what_is_missing(
    fields: dict[str, str], words: str
) -> None:
    with pytest.raises(ValidationError, match=words):
        KafkaSettings(**fields)  # type: ignore[arg-type]
