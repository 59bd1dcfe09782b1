"""Settings of the producer (prefix ``QUAX_PRODUCER_``), with the shared Kafka and logging ones."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from quaxspec.daq import DEFAULT_FS, DEFAULT_N_FFT, DEFAULT_N_SAMPLES, SAMPLE_DTYPE
from quaxspec.settings import KafkaSettings, LoggingSettings

__all__ = ["ProducerSettings", "SourceKind"]

SourceKind = Literal["synthetic", "directory", "watch"]

# Fixed part of a RawChunk message: its header plus the longest padded run id. Used to check
# at start-up that a chunk fits the Kafka message limit, rather than failing on the first send.
_CHUNK_OVERHEAD_BYTES = 56 + 256


class ProducerSettings(BaseSettings):
    """Where DAQ pairs come from, how they are cut into chunks and how fast they are sent."""

    model_config = SettingsConfigDict(env_prefix="QUAX_PRODUCER_", extra="ignore")

    source: SourceKind = Field(
        "synthetic",
        description="Where pairs come from: the built-in synthetic DAQ, a directory of "
        "finished files, or a directory watched while the DAQ writes into it.",
    )
    directory: Path | None = Field(
        None, description="Directory of duck_i/duck_q pairs (for the directory and watch sources)."
    )
    run_id: str | None = Field(
        None,
        description="Run the pairs belong to; by default the directory's name, or "
        "synthetic-<seed> for the synthetic DAQ.",
    )
    f_lo: float = Field(0.0, description="Local-oscillator frequency of the run (Hz).")
    n_fft: int = Field(DEFAULT_N_FFT, ge=2, description="Samples per FFT slice.")
    fs: float = Field(DEFAULT_FS, gt=0, description="Sampling rate of the DAQ (complex S/s).")
    slices_per_chunk: int = Field(
        32,
        ge=1,
        description="Slices per Kafka message (32 × 3072 I/Q float32 = 768 KiB, well under 1 MB).",
    )
    seconds_per_pair: float = Field(
        4.2, gt=0, description="Pace: one pair per this many seconds (the real DAQ: 4.2 s)."
    )
    mb_per_s: float | None = Field(
        None, gt=0, description="Pace in MB/s of samples (10⁶ bytes); overrides seconds_per_pair."
    )
    as_fast_as_possible: bool = Field(
        False, description="Send without pacing (overrides seconds_per_pair and mb_per_s)."
    )
    files: int | None = Field(
        None,
        ge=1,
        description="Stop after this many pairs sent (bad pairs do not count); by default all "
        "of a directory, and forever for the synthetic and watch sources.",
    )
    first_file: int = Field(
        0,
        ge=0,
        description="Number of the first synthetic file; for directory and watch, pairs with "
        "a lower number are ignored (to resume a run).",
    )
    seed: int = Field(0, ge=0, description="Seed of the synthetic DAQ's noise realisation.")
    samples_per_file: int = Field(
        DEFAULT_N_SAMPLES, ge=1, description="Samples per channel of a synthetic file."
    )
    line_frequency_hz: float = Field(
        250e3, description="Baseband onset frequency of the synthetic axion line (Hz)."
    )
    line_strength: float = Field(
        0.0, ge=0, description="Synthetic line power over the noise power in one bin; 0: no line."
    )
    watch_poll_seconds: float = Field(
        0.5, gt=0, description="Seconds between two looks at the watched directory."
    )
    watch_settle_polls: int = Field(
        2,
        ge=1,
        description="Consecutive polls over which both files of a pair must keep the same "
        "non-zero size before the pair is taken.",
    )
    max_in_flight: int = Field(
        16,
        ge=1,
        description="Chunks sent but not yet acknowledged; beyond this, a slow broker makes "
        "the producer wait instead of buffering.",
    )
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Port of the Prometheus metrics endpoint; 0 disables it."
    )
    progress: bool | None = Field(
        None, description="Show a progress display; by default when stderr is a terminal."
    )
    kafka: KafkaSettings = Field(
        default_factory=KafkaSettings, description="Kafka connection and topic names."
    )
    logging: LoggingSettings = Field(
        default_factory=LoggingSettings, description="Log format and level."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.source != "synthetic" and self.directory is None:
            raise ValueError(f"the {self.source} source needs a directory")
        if self.run_id is not None and not 1 <= len(self.run_id.encode()) <= 255:
            raise ValueError("run id must be 1–255 UTF-8 bytes")
        chunk = 2 * SAMPLE_DTYPE.itemsize * self.n_fft * self.slices_per_chunk
        if chunk + _CHUNK_OVERHEAD_BYTES > self.kafka.max_message_bytes:
            raise ValueError(
                f"a chunk of {self.slices_per_chunk} slices of {self.n_fft} is {chunk} bytes, "
                f"more than the Kafka message limit of {self.kafka.max_message_bytes}"
            )
        return self

    @property
    def run(self) -> str:
        """The run id: as given, else derived from the source."""
        if self.run_id:
            return self.run_id
        if self.directory is not None and self.source != "synthetic":
            return self.directory.resolve().name
        return f"synthetic-{self.seed}"
