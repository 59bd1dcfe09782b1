"""Settings every Faust service has; each service's class adds its own and its env prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from quaxspec.settings import ServiceSettings

__all__ = ["FaustServiceSettings"]


class FaustServiceSettings(ServiceSettings):
    """Connection, logging, consumer pacing; the app id, metrics port and working directory
    are declared by each service, with its own defaults."""

    app_id: str
    metrics_port: int
    data_dir: Path
    stream_buffer: int = Field(
        64, ge=1, description="Records of the input topic the service may prefetch."
    )
    commit_interval_seconds: float = Field(
        1.0, gt=0, description="How often consumed offsets are committed."
    )
