"""Command line of the FFT worker; ``offline`` processes a directory of DAQ files without Kafka."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quax_fft_worker.app import build_app
from quax_fft_worker.offline import process_directory
from quax_fft_worker.settings import FftWorkerSettings
from quaxfaust.worker import run_worker
from quaxspec.daq import DEFAULT_FS, DEFAULT_N_FFT
from quaxspec.findings import AnalysisConfig

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.callback()
def main() -> None:
    """FFT worker for QUAX raw chunks."""


@app.command()
def worker() -> None:
    """Run the Faust FFT worker (settings from QUAX_FFT_WORKER_* and QUAX_KAFKA_* variables)."""
    settings = FftWorkerSettings()
    run_worker(settings, service="fft-worker", build=lambda: build_app(settings))


@app.command()
def offline(
    directory: Annotated[Path, typer.Argument(help="Directory of duck_i/duck_q pairs.")],
    n_fft: Annotated[int, typer.Option(min=2, help="Samples per FFT slice.")] = DEFAULT_N_FFT,
    fs: Annotated[float, typer.Option(help="Sampling rate (Hz).")] = DEFAULT_FS,
    f_lo: Annotated[float, typer.Option(help="Local-oscillator frequency (Hz).")] = 0.0,
    threshold: Annotated[
        float, typer.Option(help="Candidate threshold (σ).")
    ] = AnalysisConfig().threshold_sigma,
    save: Annotated[
        Path | None, typer.Option(help="Write the run spectrum and analysis to this .npz file.")
    ] = None,
) -> None:
    """Per-file and cumulative spectra of a directory of DAQ files, printed as a table."""
    config = AnalysisConfig(threshold_sigma=threshold)
    process_directory(directory, n_fft=n_fft, fs=fs, f_lo=f_lo, config=config, save=save)
