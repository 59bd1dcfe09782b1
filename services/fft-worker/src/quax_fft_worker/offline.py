"""Offline processing of a directory of DAQ files: the stream's kernel and merges, without Kafka."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from quaxspec.analysis import analyse
from quaxspec.daq import DaqFileError, read_pair, scan_directory
from quaxspec.findings import AnalysisConfig, SpectrumAnalysis
from quaxspec.moments import Moments
from quaxspec.psd import frequency_axis
from quaxspec.spectrum import NonFiniteSamplesError, SpectrumKernel

__all__ = ["process_directory"]


def process_directory(
    directory: Path,
    *,
    n_fft: int,
    fs: float,
    f_lo: float,
    config: AnalysisConfig,
    save: Path | None = None,
    console: Console | None = None,
) -> Moments:
    """Print per-file results and the run's analysis; return the run's moments."""
    console = console or Console()
    scan = scan_directory(directory)
    for problem in scan.problems:
        console.print(f"[yellow]skipped[/] {problem}")
    kernel = SpectrumKernel(n_fft=n_fft, fs=fs)
    run = Moments.empty(n_fft)
    console.print(
        f"{len(scan.pairs)} pairs in {directory}; n_fft {n_fft}, "
        f"bins of {fs / n_fft:.1f} Hz over ±{fs / 2e6:g} MHz around f_LO"
    )
    console.print("  file  slices  dropped   mean PSD (V²/Hz)   median SK   kernel (ms)   MB/s")
    skipped = 0
    for pair in scan.pairs:
        try:
            record = read_pair(pair)
            started = time.perf_counter()
            moments = kernel.record_moments(record)
            elapsed = time.perf_counter() - started
        except (DaqFileError, NonFiniteSamplesError) as error:
            console.print(f"[yellow]skipped[/] file {pair.number}: {error}")
            skipped += 1
            continue
        run = run.merge(moments)
        layout = record.layout(n_fft)
        megabytes = 2 * 4 * record.n_samples / 1e6
        console.print(
            f"{pair.number:6d} {layout.n_slices:7d} {layout.remainder:8d}"
            f"   {np.mean(moments.mean):16.4e}   {np.nanmedian(moments.spectral_kurtosis):9.4f}"
            f"   {elapsed * 1e3:11.1f} {megabytes / elapsed:6.0f}"
        )
    if run.n == 0:
        console.print("[red]no usable files[/]")
        return run
    freq = frequency_axis(n_fft, fs, f_lo)
    result = analyse(run.mean, int(run.n), frequency=freq, config=config)
    _print_run(console, run, result, f_lo=f_lo, files=len(scan.pairs) - skipped, config=config)
    if save is not None:
        np.savez(
            save, frequency_hz=freq, mean=run.mean, sem=run.sem, count=run.n,
            baseline=result.baseline, excess_sigma=result.excess_sigma,
            matched_sigma=result.matched_sigma,
        )  # fmt: skip
        console.print(f"run spectrum written to {save}")
    return run


def _print_run(
    console: Console,
    run: Moments,
    result: SpectrumAnalysis,
    *,
    f_lo: float,
    files: int,
    config: AnalysisConfig,
) -> None:
    console.print(
        f"\nrun: {files} files, {run.n} slices; radiometer ratio std(δ)·√N = "
        f"{result.radiometer_ratio:.3f} (1 when the noise averages down)"
    )
    table = Table(title=f"candidates above {config.threshold_sigma} σ (matched filter)")
    for column in ("f − f_LO (kHz)", "significance (σ)", "peak bin excess (σ)"):
        table.add_column(column, justify="right")
    for candidate in sorted(result.candidates, key=lambda c: -c.significance):
        table.add_row(
            f"{(candidate.frequency_hz - f_lo) / 1e3:+.2f}",
            f"{candidate.significance:.2f}",
            f"{candidate.excess_sigma:.2f}",
        )
    console.print(table if result.candidates else "no candidates")
