"""Kernel benchmark: the full kernel (bytes → FFT → power → mean/M2) against the bare FFT and numpy.

Writes a markdown table (with the machine) between the kernel markers of docs/benchmarks.md
and the raw figures to bench/results/kernel.json.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import numpy as np
import pyfftw
import typer

from quaxspec.messages import RawChunk
from quaxspec.spectrum import SpectrumKernel

ROOT = Path(__file__).resolve().parents[1]
FS = 2.0e6
BEGIN, END = "<!-- kernel:begin -->", "<!-- kernel:end -->"

app = typer.Typer(add_completion=False)


def _seconds(
    calls: dict[str, Callable[[], object]], *, rounds: int, budget: float
) -> dict[str, float]:
    """Per-call time of each variant: the fastest of ``rounds`` interleaved timing rounds.

    Rounds alternate between the variants, so that drift in the machine's speed hits all
    of them alike; the minimum is the least disturbed estimate of each.
    """
    loops = {}
    for name, call in calls.items():
        call()
        started = time.perf_counter()
        call()
        loops[name] = max(1, int(budget / rounds / max(time.perf_counter() - started, 1e-7)))
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            for _ in range(loops[name]):
                call()
            best[name] = min(best[name], (time.perf_counter() - started) / loops[name])
    return best


def _chunk_bytes(k: int, n_fft: int) -> bytes:
    rng = np.random.default_rng(0)
    i, q = (rng.standard_normal((k, n_fft), dtype=np.float32) for _ in range(2))
    chunk = RawChunk(
        run_id="bench", file_number=0, first_slice=0, total_slices=k, n_fft=n_fft,
        fs=FS, f_lo=0.0, daq_time=0.0, i=i, q=q,
    )  # fmt: skip
    return chunk.to_bytes()


def measure(k: int, n_fft: int, *, rounds: int, budget: float) -> dict[str, float]:
    """Seconds per slice of each variant for a batch of ``k`` slices."""
    data = _chunk_bytes(k, n_fft)
    kernel = SpectrumKernel(n_fft=n_fft, fs=FS)
    # The floor is the kernel's own plan (same algorithm, same buffer), executed alone.
    # Executed repeatedly in place its values grow into inf/NaN, which costs x86 no time.
    bare = kernel.plan(k).execute

    def full() -> None:
        chunk = RawChunk.from_bytes(data)
        kernel.moments(chunk.i, chunk.q)

    def numpy_chain() -> None:
        chunk = RawChunk.from_bytes(data)
        z = np.empty((k, n_fft), np.complex64)
        z.real, z.imag = chunk.i, chunk.q
        spectra = np.fft.fft(z, axis=1)
        power = (spectra.real**2 + spectra.imag**2) / np.float32(FS * n_fft)
        np.fft.fftshift(power.mean(axis=0, dtype=np.float64))
        np.fft.fftshift(power.var(axis=0, dtype=np.float64))

    timed = {"bare_fft": bare, "kernel": full, "numpy": numpy_chain}
    seconds = _seconds(timed, rounds=rounds, budget=budget)
    return {name: value / k for name, value in seconds.items()}


def _machine() -> dict[str, str]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pyfftw": pyfftw.__version__,
    }


def _table(results: dict[int, dict[str, float]], n_fft: int, machine: dict[str, str]) -> str:
    slice_bytes = 2 * 4 * n_fft
    lines = [
        f"Machine: {machine['cpu']}, {machine['cores']} cores; Python {machine['python']}, "
        f"numpy {machine['numpy']}, pyFFTW {machine['pyfftw']}; one thread; n_fft = {n_fft}; "
        "fastest of 15 interleaved rounds.",
        "",
        "| slices per batch | variant | µs per slice | slices/s | MB/s of raw input | × bare FFT |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    names = {"bare_fft": "bare pyFFTW plan", "kernel": "full kernel", "numpy": "numpy chain"}
    for k, row in results.items():
        for key, label in names.items():
            seconds = row[key]
            lines.append(
                f"| {k} | {label} | {seconds * 1e6:.2f} | {1 / seconds:,.0f} | "
                f"{slice_bytes / seconds / 1e6:,.0f} | {seconds / row['bare_fft']:.2f} |"
            )
    return "\n".join(lines)


@app.command()
def main(
    n_fft: Annotated[int, typer.Option(help="Samples per slice.")] = 3072,
    batches: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "32,64,256",
    rounds: Annotated[int, typer.Option(help="Interleaved timing rounds.")] = 15,
    budget: Annotated[float, typer.Option(help="Seconds spent per variant and batch size.")] = 2.0,
    record: Annotated[bool, typer.Option(help="Write docs/benchmarks.md and results.")] = True,
) -> None:
    """Measure and print (and record) the kernel table."""
    sizes = [int(k) for k in batches.split(",")]
    results = {k: measure(k, n_fft, rounds=rounds, budget=budget) for k in sizes}
    machine = _machine()
    table = _table(results, n_fft, machine)
    typer.echo(table)
    if record:
        out = ROOT / "bench" / "results" / "kernel.json"
        out.write_text(
            json.dumps({"machine": machine, "n_fft": n_fft, "seconds_per_slice": results}, indent=2)
            + "\n"
        )
        doc = ROOT / "docs" / "benchmarks.md"
        text = doc.read_text()
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        doc.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")


if __name__ == "__main__":
    app()
