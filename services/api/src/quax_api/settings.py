"""Settings of the API service (environment prefix ``QUAX_API_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from quaxspec.settings import S3Settings, ServiceSettings

__all__ = ["ApiSettings"]


class ApiSettings(ServiceSettings):
    """Where the API listens, what it keeps in memory and how it feeds WebSocket clients."""

    model_config = SettingsConfigDict(env_prefix="QUAX_API_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 in a container).")
    port: int = Field(8000, description="Port of the REST API, WebSocket feed and dashboard.")
    recent_files: int = Field(
        240, ge=1, description="File spectra kept per run (for the file list and the waterfall)."
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Web origins (scheme://host:port) whose pages may open the WebSocket feed, "
        "besides the API's own; ['*'] allows any. Clients without an Origin are not affected.",
    )
    max_runs: int = Field(
        8,
        ge=1,
        description="Runs whose spectra are kept in memory (the most recently updated; ~18 MB "
        "each); older runs are listed with their figures only.",
    )
    restore_file_messages: int = Field(
        300,
        ge=0,
        description="File spectra re-read per partition of quax.spectra at start (the tail); "
        "each costs a JSON decode, so keep it near recent_files.",
    )
    archive_directory: Path | None = Field(
        None,
        description="Root of the Parquet archive that quax-archiver writes (docs/archive.md): "
        "runs that have left Kafka's retention, or are older than the max_runs kept in "
        "memory, are served from it. Unset: only what Kafka holds is served.",
    )
    archive_s3_url: str | None = Field(
        None,
        description="s3://bucket/prefix of an archive in an object store, instead of "
        "archive_directory (reached as the QUAX_S3_* settings or the standard AWS ways say).",
    )
    s3: S3Settings = Field(
        default_factory=S3Settings, description="How to reach the object store (archive_s3_url)."
    )
    archive_cached_runs: int = Field(
        4, ge=1, description="Archived runs whose spectra are kept in memory once read."
    )
    client_queue: int = Field(
        32, ge=1, description="Updates queued per WebSocket client; a slow one loses the oldest."
    )
    websocket_compression: bool = Field(
        False,
        description="Offer permessage-deflate: less bandwidth, but one compression per client "
        "and update (off: every client is sent the same encoded bytes).",
    )
