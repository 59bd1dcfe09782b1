"""Settings of the archiver (environment prefix ``QUAX_ARCHIVER_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from quaxspec.settings import S3Location, S3Settings, ServiceSettings

__all__ = ["ArchiverSettings"]


class ArchiverSettings(ServiceSettings):
    """Where the archive is, how much it buffers, how it reports."""

    model_config = SettingsConfigDict(env_prefix="QUAX_ARCHIVER_", extra="ignore")

    directory: Path = Field(
        Path("data/archive"),
        description="Root of the Parquet archive (docs/archive.md). One archiver writes it.",
    )
    s3_url: str | None = Field(
        None,
        description="s3://bucket/prefix: the archive in an object store instead of directory "
        "(reached as the QUAX_S3_* settings or the standard AWS ways say).",
    )
    s3: S3Settings = Field(
        default_factory=S3Settings, description="How to reach the object store (s3_url)."
    )
    group_id: str = Field(
        "quax-archiver",
        description="Consumer group the archiver commits to after each flush (for its lag); "
        "where it resumes is decided by the archive's own positions.",
    )
    roll_seconds: float = Field(
        300.0,
        gt=0,
        description="Longest time a record waits in memory before it is written: the most "
        "the archive is behind the stream (a stop flushes at once).",
    )
    roll_megabytes: float = Field(
        64.0,
        gt=0,
        description="Spectrum arrays buffered before a flush (MB): about 870 files at n_fft "
        "3072, one Parquet file per run, day and Kafka partition.",
    )
    metrics_port: int = Field(9104, description="Port of the Prometheus metrics; 0 disables.")

    @model_validator(mode="after")
    def _s3_url(self) -> Self:
        if self.s3_url is not None:
            S3Location.parse(self.s3_url)  # ValueError with the reason
        return self

    @property
    def where(self) -> str:
        """The archive's place, as logged: its s3:// URL or its folder."""
        return self.s3_url or str(self.directory)
