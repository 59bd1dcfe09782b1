"""Settings of the FFT worker (environment prefix ``QUAX_FFT_WORKER_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from quaxfaust.settings import FaustServiceSettings

__all__ = ["FftWorkerSettings"]


class FftWorkerSettings(FaustServiceSettings):
    """How an FFT worker connects, computes and reports."""

    model_config = SettingsConfigDict(env_prefix="QUAX_FFT_WORKER_", extra="ignore")

    app_id: str = Field(
        "quax-fft-worker", description="Faust app id: the consumer group of all FFT workers."
    )
    metrics_port: int = Field(9101, description="Port of the Prometheus metrics; 0 disables.")
    fft_threads: int = Field(1, ge=1, description="FFTW threads per worker (scale with replicas).")
    planner_effort: str = Field(
        "FFTW_MEASURE", description="FFTW planner effort: FFTW_ESTIMATE … FFTW_PATIENT."
    )
    warm_up: bool = Field(
        True,
        description="At start, plan the FFTs of the DAQ's default files (n_fft 3072, fs 2 MS/s, "
        "chunks of 32 slices and the short last one) so that the first file is not slower.",
    )
    # Fed 112 MB/s, one worker gave 84 MB/s out with 8, fetching in small round trips with
    # CPU to spare, and 100 with 64 (docs/benchmarks.md), for at most 50 MB of buffered chunks.
    stream_buffer: int = Field(
        64, ge=1, description="Chunks a worker may prefetch (each up to 1 MiB)."
    )
    data_dir: Path = Field(
        Path("/tmp/quax-fft-worker"), description="Faust's working directory (no tables here)."
    )
