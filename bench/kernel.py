"""Kernel benchmark: the full kernel (bytes → FFT → power → mean/M2) against the bare FFT and numpy.

Writes a markdown table (with the machine) between the kernel markers of docs/benchmarks.md
and the raw figures to bench/results/kernel.json.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
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


def _seconds(call: Callable[[], object], *, repeats: int, budget: float) -> float:
    """Median wall time of one call over ``repeats`` timing rounds within ``budget`` seconds."""
    call()
    started = time.perf_counter()
    call()
    once = max(time.perf_counter() - started, 1e-7)
    loops = max(1, int(budget / repeats / once))
    rounds = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(loops):
            call()
        rounds.append((time.perf_counter() - started) / loops)
    return statistics.median(rounds)


def _chunk_bytes(k: int, n_fft: int) -> bytes:
    rng = np.random.default_rng(0)
    i, q = (rng.standard_normal((k, n_fft), dtype=np.float32) for _ in range(2))
    chunk = RawChunk(
        run_id="bench", file_number=0, first_slice=0, total_slices=k, n_fft=n_fft,
        fs=FS, f_lo=0.0, daq_time=0.0, i=i, q=q,
    )  # fmt: skip
    return chunk.to_bytes()


def measure(k: int, n_fft: int, *, repeats: int, budget: float) -> dict[str, float]:
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
        z = chunk.i + 1j * chunk.q.astype(np.complex64)
        power = np.abs(np.fft.fftshift(np.fft.fft(z, axis=1), axes=1)) ** 2 / (FS * n_fft)
        power.mean(axis=0, dtype=np.float64)
        power.var(axis=0, dtype=np.float64)

    timed = {"bare_fft": bare, "kernel": full, "numpy": numpy_chain}
    return {
        name: _seconds(call, repeats=repeats, budget=budget) / k for name, call in timed.items()
    }


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
        f"numpy {machine['numpy']}, pyFFTW {machine['pyfftw']}; one thread; n_fft = {n_fft}.",
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
    repeats: Annotated[int, typer.Option(help="Timing rounds per variant.")] = 7,
    budget: Annotated[float, typer.Option(help="Seconds spent per variant.")] = 1.5,
    record: Annotated[bool, typer.Option(help="Write docs/benchmarks.md and results.")] = True,
) -> None:
    """Measure and print (and record) the kernel table."""
    sizes = [int(k) for k in batches.split(",")]
    results = {k: measure(k, n_fft, repeats=repeats, budget=budget) for k in sizes}
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
