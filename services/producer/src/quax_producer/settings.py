"""Settings of the producer (prefix ``QUAX_PRODUCER_``), with the shared Kafka and logging ones."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from quaxspec.daq import (
    DEFAULT_FS,
    DEFAULT_N_FFT,
    DEFAULT_N_SAMPLES,
    DEFAULT_SLICES_PER_CHUNK,
)
from quaxspec.limits import check_fits
from quaxspec.progress import RunConfig, Shard
from quaxspec.settings import S3Location, S3Settings, ServiceSettings

__all__ = ["ProducerSettings", "SourceKind", "WatchMethod"]

SourceKind = Literal["synthetic", "directory", "watch", "s3"]
WatchMethod = Literal["auto", "events", "poll"]


class ProducerSettings(ServiceSettings):
    """Where DAQ pairs come from, how they are cut into chunks and how fast they are sent."""

    model_config = SettingsConfigDict(env_prefix="QUAX_PRODUCER_", extra="ignore")

    source: SourceKind = Field(
        "synthetic",
        description="Where pairs come from: the built-in synthetic DAQ, a directory of "
        "finished files, a directory watched while the DAQ writes into it, or the finished "
        "files under an S3 prefix (bucket_url).",
    )
    directory: Path | None = Field(
        None, description="Directory of duck_i/duck_q pairs (for the directory and watch sources)."
    )
    bucket_url: str | None = Field(
        None,
        description="s3://bucket/prefix of duck_i/duck_q objects (for the s3 source; the "
        "store is reached as the s3 settings say).",
    )
    s3_read_ahead: int = Field(
        2,
        ge=0,
        description="s3 source: pairs downloaded ahead of the one being sent (each is held "
        "in memory: 64 MiB for the DAQ's files).",
    )
    run_id: str | None = Field(
        None,
        description="Run the pairs belong to. By default one run per acquisition: the "
        "producer resumes the newest run of its source if its files are unchanged, and "
        "otherwise starts <folder name or synthetic-<seed>>-<UTC time of the first file>.",
    )
    shard: str | None = Field(
        None,
        description="K/N: take only the file numbers n with n mod N = K−1, so that N "
        "producers (K = 1 … N, the same run id and settings) feed one run together; each "
        "resumes from its own progress. For replays (directory, synthetic).",
    )
    f_lo: float = Field(0.0, description="Local-oscillator frequency of the run (Hz).")
    n_fft: int = Field(DEFAULT_N_FFT, ge=2, description="Samples per FFT slice.")
    fs: float = Field(DEFAULT_FS, gt=0, description="Sampling rate of the DAQ (complex S/s).")
    slices_per_chunk: int = Field(
        DEFAULT_SLICES_PER_CHUNK,
        ge=1,
        description="Slices per Kafka message (32 × 3072 I/Q float32 = 768 KiB, well under 1 MB).",
    )
    seconds_per_pair: float = Field(
        4.2,
        gt=0,
        description="Pace of a replay (directory, s3, synthetic): one pair per this many seconds "
        "(the real DAQ: 4.2 s). A watched folder is not paced: the DAQ is the clock.",
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
        description="How many pairs: synthetic, files first_file … first_file+files−1; "
        "directory or s3, the first this many good pairs from first_file on (those delivered "
        "before a restart count); watch, stop after this many delivered. By default all "
        "of a directory, and forever for the synthetic and watch sources.",
    )
    first_file: int = Field(
        0,
        ge=0,
        description="Number of the first synthetic file; for directory, s3 and watch, pairs with "
        "a lower number are ignored.",
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
    watch_method: WatchMethod = Field(
        "auto",
        description="How the watch source knows that a file is complete: events (inotify "
        "close events; local file systems), poll (sizes that stop changing; NFS and other "
        "file systems written from another host), or auto (by the folder's file system).",
    )
    watch_settle_seconds: float = Field(
        1.0,
        gt=0,
        description="Events: a pair found in the folder at start, or complete with "
        "mismatched files, is taken (or reported) after this long without a write.",
    )
    watch_send_while_written: bool = Field(
        True,
        description="Send a pair's slices while the DAQ writes it, so that little is left "
        "to send when its last byte lands. For a DAQ that appends to files of one length "
        "(the run's); a DAQ that preallocates or rewrites its files needs false.",
    )
    watch_file_samples: int | None = Field(
        None,
        ge=1,
        description="Samples per channel of the DAQ's files, if known: pairs are sent while "
        "written from the first one on; by default learnt from the first complete pair.",
    )
    watch_poll_seconds: float = Field(
        0.25, gt=0, description="Polling: seconds between two looks at the pairs being written."
    )
    watch_settle_polls: int = Field(
        2,
        ge=1,
        description="Polling: consecutive looks over which both files of a pair must keep "
        "the same non-zero size and mtime before the pair is taken.",
    )
    watch_rescan_seconds: float = Field(
        300.0,
        gt=0,
        description="Polling: seconds between two listings of the whole folder (a poll "
        "looks only at the pairs being written and the next file numbers).",
    )
    delivery_timeout_seconds: float = Field(
        15.0,
        gt=0,
        description="A chunk not acknowledged by Kafka within this time counts as failed: "
        "the client is made again and the file's unacknowledged chunks are sent again.",
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
    s3: S3Settings = Field(
        default_factory=S3Settings, description="How to reach the object store (s3 source)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.source == "s3":
            if self.bucket_url is None:
                raise ValueError("the s3 source needs a bucket_url (s3://bucket/prefix)")
            S3Location.parse(self.bucket_url)  # ValueError with the reason
        elif self.source != "synthetic" and self.directory is None:
            raise ValueError(f"the {self.source} source needs a directory")
        if self.run_id is not None and not 1 <= len(self.run_id.encode()) <= 255:
            raise ValueError("run id must be 1–255 UTF-8 bytes")
        if self.shard is not None:
            Shard.parse(self.shard)  # ValueError with the reason
            if self.run_id is None:
                raise ValueError("a shard needs a run id: the shards of a run must name it")
            if self.source == "watch":
                raise ValueError(
                    "a watched folder is one DAQ writing in order: shard a replay instead"
                )
        # Every message the run will cause downstream must fit, or the run is refused now.
        check_fits(
            n_fft=self.n_fft,
            slices_per_chunk=self.slices_per_chunk,
            limit=self.kafka.max_message_bytes,
        )
        return self

    @property
    def shard_of_run(self) -> Shard | None:
        """The shard of the run's files this producer takes; None: all of them."""
        return None if self.shard is None else Shard.parse(self.shard)

    @property
    def source_identity(self) -> str:
        """What names the source across restarts: ``watch:/daq/out``, ``synthetic:seed=3``."""
        if self.source == "s3" and self.bucket_url is not None:
            endpoint = self.s3.endpoint_url or "aws"
            return f"s3:{endpoint}:{S3Location.parse(self.bucket_url).url()}"
        if self.source == "synthetic" or self.directory is None:
            return f"synthetic:seed={self.seed}"
        return f"{self.source}:{self.directory.resolve()}"

    @property
    def run_base(self) -> str:
        """The start of a new run's id: the folder's or prefix's name, or synthetic-<seed>."""
        if self.source == "s3" and self.bucket_url is not None:
            return S3Location.parse(self.bucket_url).name
        if self.source == "synthetic" or self.directory is None:
            return f"synthetic-{self.seed}"
        return self.directory.resolve().name or "daq"

    @property
    def run_config(self) -> RunConfig:
        """The configuration a run keeps from its first file."""
        return RunConfig(
            n_fft=self.n_fft,
            fs=self.fs,
            f_lo=self.f_lo,
            slices_per_chunk=self.slices_per_chunk,
            samples_per_file=self.samples_per_file if self.source == "synthetic" else None,
        )
