"""Settings shared by every service: where Kafka is, how to reach it safely, how topics are named.

Security: TLS (``SSL``, optionally mutual with a client certificate) and SASL (SCRAM-SHA-512
by default) for every client — aiokafka's producers, consumers and admin clients through
:meth:`KafkaSettings.client_options`, the producer's librdkafka client through
:meth:`KafkaSettings.librdkafka_config`, Faust's apps through
``quaxfaust.app.broker_credentials``.
A password comes from the environment (``QUAX_KAFKA_SASL_PASSWORD``) or a file (a mounted
Secret, ``QUAX_KAFKA_SASL_PASSWORD_FILE``); it is a secret type, so it is never printed or
logged with the settings.
"""

from __future__ import annotations

import ssl
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from quaxspec.topics import MAX_MESSAGE_BYTES, TopicSpec

__all__ = ["KafkaSettings", "LoggingSettings", "S3Location", "S3Settings", "ServiceSettings"]


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
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="PLAINTEXT (development only), SSL (TLS, mutual with a client "
        "certificate), SASL_SSL (TLS and a user and password) or SASL_PLAINTEXT.",
    )
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism."
    )
    sasl_username: str | None = Field(None, description="SASL user.")
    sasl_password: SecretStr | None = Field(
        None, description="SASL password (or give sasl_password_file)."
    )
    sasl_password_file: Path | None = Field(
        None, description="File holding the SASL password (a mounted Secret)."
    )
    ssl_cafile: Path | None = Field(
        None, description="CA bundle that signed the brokers' certificates (default: system)."
    )
    ssl_certfile: Path | None = Field(None, description="Client certificate (PEM) for mutual TLS.")
    ssl_keyfile: Path | None = Field(None, description="Private key (PEM) of ssl_certfile.")

    @model_validator(mode="after")
    def _complete_security(self) -> Self:
        sasl = self.security_protocol.startswith("SASL")
        if sasl and not self.sasl_username:
            raise ValueError(f"security protocol {self.security_protocol} needs sasl_username")
        if sasl and self.sasl_password is None and self.sasl_password_file is None:
            raise ValueError(
                f"security protocol {self.security_protocol} needs sasl_password or "
                "sasl_password_file"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together (mutual TLS)")
        return self

    @property
    def uses_tls(self) -> bool:
        """Whether connections are encrypted."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    def password(self) -> str | None:
        """The SASL password, read from its file if one is given."""
        if self.sasl_password_file is not None:
            return self.sasl_password_file.read_text().strip()
        return None if self.sasl_password is None else self.sasl_password.get_secret_value()

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of the clients (None without TLS)."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(
            cafile=None if self.ssl_cafile is None else str(self.ssl_cafile)
        )
        if self.ssl_certfile is not None and self.ssl_keyfile is not None:
            context.load_cert_chain(str(self.ssl_certfile), str(self.ssl_keyfile))
        return context

    def client_options(self) -> dict[str, Any]:
        """Connection and security keyword arguments of every aiokafka client."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        if self.security_protocol.startswith("SASL"):
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.password(),
            }
        return options

    def librdkafka_config(self) -> dict[str, str]:
        """The same connection and security as librdkafka configuration (confluent-kafka)."""
        config = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.uses_tls:
            # The host name is checked against the certificate, as ssl_context() does.
            config["ssl.endpoint.identification.algorithm"] = "https"
            config["ssl.ca.location"] = "probe" if self.ssl_cafile is None else str(self.ssl_cafile)
            if self.ssl_certfile is not None and self.ssl_keyfile is not None:
                config["ssl.certificate.location"] = str(self.ssl_certfile)
                config["ssl.key.location"] = str(self.ssl_keyfile)
        if self.security_protocol.startswith("SASL"):
            config |= {
                "sasl.mechanism": self.sasl_mechanism,
                "sasl.username": self.sasl_username or "",
                "sasl.password": self.password() or "",
            }
        return config

    def topic(self, spec: TopicSpec) -> str:
        """The full name of a project topic."""
        return f"{self.topic_prefix}{spec.name}"


class LoggingSettings(BaseSettings):
    """Log format and level (environment prefix ``QUAX_LOG_``)."""

    model_config = SettingsConfigDict(env_prefix="QUAX_LOG_", extra="ignore")

    json_format: bool = Field(False, description="One JSON object per line (for deployment).")
    level: str = Field("INFO", description="Minimum level: DEBUG, INFO, WARNING, ERROR.")


class ServiceSettings(BaseSettings):
    """What every service's settings class has: the shared Kafka and logging settings, read
    from their own prefixes. Each service adds its fields and its prefix."""

    kafka: KafkaSettings = Field(
        default_factory=KafkaSettings,
        description="Kafka connection and topic names (QUAX_KAFKA_*).",
    )
    logging: LoggingSettings = Field(
        default_factory=LoggingSettings, description="Log format and level (QUAX_LOG_*)."
    )


class S3Settings(BaseSettings):
    """How to reach an S3-compatible object store (environment prefix ``QUAX_S3_``).

    Every field is optional: what is not given comes the standard AWS ways (``AWS_*``
    environment variables, ``~/.aws/config`` and ``credentials``, an instance or pod role),
    as boto3 finds it. A non-AWS store (SeaweedFS, Ceph, the original task's) usually needs
    ``endpoint_url`` and path-style addressing.
    """

    model_config = SettingsConfigDict(env_prefix="QUAX_S3_", extra="ignore")

    endpoint_url: str | None = Field(
        None,
        description="The store's URL (http://host:port) for a non-AWS store; by default "
        "AWS_ENDPOINT_URL or AWS's own.",
    )
    region: str | None = Field(None, description="Region; by default AWS_REGION or the profile's.")
    profile: str | None = Field(
        None, description="Named profile of ~/.aws/config; by default AWS_PROFILE or the default."
    )
    access_key_id: str | None = Field(
        None, description="Access key; by default from the environment, profile or role."
    )
    secret_access_key: SecretStr | None = Field(
        None, description="Secret key that goes with access_key_id (never logged)."
    )
    addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto",
        description="Bucket in the path (most non-AWS stores) or in the host name (AWS).",
    )
    max_attempts: int = Field(
        5,
        ge=1,
        description="Attempts of one request (botocore's standard retry mode) before the "
        "caller's own backoff takes over.",
    )
    connect_timeout_seconds: float = Field(10.0, gt=0, description="Connection timeout.")
    read_timeout_seconds: float = Field(
        60.0, gt=0, description="Longest wait for the next bytes of a response."
    )

    @model_validator(mode="after")
    def _keys_together(self) -> Self:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key go together")
        return self


@dataclass(frozen=True, slots=True)
class S3Location:
    """A bucket and a prefix (empty, or ending with ``/``)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """``s3://bucket`` or ``s3://bucket/some/prefix``; ValueError with the reason otherwise."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"{url!r} is not s3://bucket or s3://bucket/prefix")
        prefix = parts.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return cls(parts.netloc, prefix)

    def url(self, key: str = "") -> str:
        """The ``s3://`` URL of a key (of the prefix itself by default)."""
        return f"s3://{self.bucket}/{key or self.prefix}"

    @property
    def name(self) -> str:
        """The prefix's last part, or the bucket's name: what names the runs read from it."""
        return self.prefix.rstrip("/").rpartition("/")[2] or self.bucket
