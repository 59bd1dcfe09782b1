"""Settings of the aggregator (environment prefix ``QUAX_AGGREGATOR_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from quaxfaust.settings import FaustServiceSettings
from quaxspec.findings import AnalysisConfig

__all__ = ["AggregatorSettings"]

_ANALYSIS = AnalysisConfig()


class AggregatorSettings(FaustServiceSettings):
    """How the aggregator connects, stores its tables, closes files and analyses runs."""

    model_config = SettingsConfigDict(env_prefix="QUAX_AGGREGATOR_", extra="ignore")

    app_id: str = Field(
        "quax-aggregator", description="Faust app id: consumer group and table changelog names."
    )
    store: str = Field(
        "memory://",
        description="Table store: memory:// (rebuilt from the changelog at start) or rocksdb://.",
    )
    data_dir: Path = Field(
        Path("/tmp/quax-aggregator"), description="Directory of the table store and Faust state."
    )
    metrics_port: int = Field(9102, description="Port of the Prometheus metrics; 0 disables.")
    file_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="A file that receives nothing for this long is closed incomplete; time "
        "during which the FFT workers or the aggregator are behind, or Kafka cannot be "
        "asked, does not count.",
    )
    upstream_group: str = Field(
        "quax-fft-worker",
        description="Consumer group (app id) of the FFT workers, whose lag on the raw topic "
        "pauses file timeouts; empty: only the aggregator's own lag pauses them.",
    )
    late_files: int = Field(
        64,
        ge=0,
        description="Files closed before they finished that each run keeps, so that their "
        "late chunks still merge (each emits a new revision); beyond it the oldest is "
        "forgotten and its late chunks are counted as dropped.",
    )
    run_idle_seconds: float = Field(
        1800.0,
        gt=0,
        description="A run not updated for this long loses its per-run metric series.",
    )
    close_check_seconds: float = Field(
        5.0, gt=0, description="How often open files are checked against the timeout."
    )
    release_every: int = Field(
        256,
        ge=1,
        description="Partials of a partition whose table writes are held in memory before "
        "they reach the changelogs (a closed file reaches them at once). A restart reads "
        "at most this many partials again; 1 writes every partial's state.",
    )
    # The analysis's parameters, flat so that each is one variable; their defaults are
    # AnalysisConfig's, which validates them together.
    baseline_window: int = Field(
        _ANALYSIS.baseline_window, description="Savitzky–Golay baseline window (odd, bins)."
    )
    baseline_order: int = Field(
        _ANALYSIS.baseline_order, description="Savitzky–Golay polynomial degree."
    )
    threshold_sigma: float = Field(
        _ANALYSIS.threshold_sigma, description="Candidate threshold (σ)."
    )
    line_fwhm_hz: float = Field(
        _ANALYSIS.line_fwhm_hz, gt=0, description="Expected axion line width (Hz)."
    )

    @property
    def analysis(self) -> AnalysisConfig:
        """The live-analysis configuration."""
        return AnalysisConfig(
            baseline_window=self.baseline_window,
            baseline_order=self.baseline_order,
            threshold_sigma=self.threshold_sigma,
            line_fwhm_hz=self.line_fwhm_hz,
        )
