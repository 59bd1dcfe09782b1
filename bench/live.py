"""Live DAQ benchmark: what a user sees of a watched folder over a long run, and the watch's cost.

Two measurements:
- latency: a DAQ emulator writes 2²³-sample pairs in pieces at the real rate (one every
  4.2 s) into a folder the producer watches, for ``--minutes``; two FFT workers, the
  aggregator and the API run on a fresh local broker. For every pair, the time from its
  last byte on disk to its spectrum on the API's WebSocket (wall clock of this process);
  median, p95, p99, max, and a straight-line fit against the file number (a backlog would
  grow). Then the same with a DAQ ``--fast-speed`` times faster (half the highest rate
  `make bench-sustained` held) for ``--fast-files`` pairs.
- watch cost: the time the watch spends per batch of events (inotify) or per poll, in an
  empty folder and in one holding 20,000 delivered pairs, while new pairs arrive one by one.
Writes the tables between the live markers of docs/benchmarks.md and raw figures to
bench/results/live.json.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import recording  # noqa: E402
from daq_emulator import DaqEmulator  # noqa: E402
from localkafka import LocalKafka  # noqa: E402
from pipeline import Pipeline  # noqa: E402
from ws_listener import WebSocketListener  # noqa: E402

from quax_producer.watch import watch_source  # noqa: E402
from quaxspec.daq import DEFAULT_N_SAMPLES, pair_paths  # noqa: E402

PERIOD = 4.2

app = typer.Typer(add_completion=False)


def latency(root: Path, *, files: int, speed: float = 1.0) -> dict[str, object]:
    """Last byte on disk → spectrum on the WebSocket, for every pair of a watched run.

    The DAQ writes a pair every 4.2 s / ``speed``.
    """
    period = PERIOD / speed
    kafka = LocalKafka.fresh(root / "kafka")
    kafka.run("start")
    daq = DaqEmulator(root / "daq", samples=DEFAULT_N_SAMPLES, period=period, keep=6, seed=3)
    pipe = Pipeline(kafka, root / "pipe")
    try:
        port = pipe.start_watched_daq(daq.directory, file_samples=DEFAULT_N_SAMPLES)
        with WebSocketListener(f"ws://127.0.0.1:{port}/ws/v1/spectra") as listener:
            daq.start(files)
            daq.join()
            listener.wait_for(files, timeout=120)
    finally:
        pipe.close()
        kafka.run("stop")
    arrivals = listener.files()
    latencies = np.array([arrivals[n].time - daq.completed[n] for n in range(files)])
    fit = stats.linregress(np.arange(files), latencies)
    return {
        "files": files,
        "speed": speed,
        "minutes": files * period / 60,
        "median_s": float(np.median(latencies)),
        "p95_s": float(np.percentile(latencies, 95)),
        "p99_s": float(np.percentile(latencies, 99)),
        "max_s": float(latencies.max()),
        "slope_ms_per_file": float(fit.slope * 1e3),
        "slope_stderr_ms_per_file": float(fit.stderr * 1e3),
        "incomplete": sum(not a.complete for a in arrivals.values()),
        "latencies_s": [round(float(x), 4) for x in latencies],
    }


async def _watch_cost(folder: Path, method: str, delivered: int, new: int) -> dict[str, float]:
    looks: list[float] = []
    ready: list[float] = []

    def look(seconds: float) -> None:
        if not ready:  # the first look comes right after the folder is listed
            ready.append(time.perf_counter() - started)
        looks.append(seconds)

    started = time.perf_counter()
    source = watch_source(
        folder,
        method=method,  # type: ignore[arg-type]
        poll_seconds=0.05,
        settle_polls=2,
        skip=lambda n: n < delivered,
        on_look=look,
    )
    pending = asyncio.ensure_future(anext(source))
    await asyncio.sleep(0.5)
    looks.clear()
    rng = np.random.default_rng(0)
    try:
        for number in range(delivered, delivered + new):
            i, q = rng.standard_normal((2, 3072 * 8), dtype=np.float32)
            i_path, q_path = pair_paths(folder, number)
            i_path.write_bytes(i.tobytes())
            q_path.write_bytes(q.tobytes())
            await asyncio.wait_for(pending, 10)
            pending = asyncio.ensure_future(anext(source))
    finally:
        pending.cancel()
        await source.aclose()
        for number in range(delivered, delivered + new):  # the folder as it was, for the next
            for path in pair_paths(folder, number):
                path.unlink(missing_ok=True)
    per_look = np.array(looks) * 1e6
    return {
        "start_s": ready[0],
        "looks": len(looks),
        "median_us": float(np.median(per_look)),
        "p99_us": float(np.percentile(per_look, 99)),
    }


def watch_cost(root: Path, *, pairs: int, new: int = 50) -> list[dict[str, object]]:
    """Time per batch of events or per poll, with 0 and with ``pairs`` pairs in the folder."""
    results = []
    for delivered in (0, pairs):
        folder = root / f"folder-{delivered}"
        folder.mkdir(parents=True)
        for number in range(delivered):
            for path in pair_paths(folder, number):
                with path.open("wb") as file:
                    file.truncate(4 * DEFAULT_N_SAMPLES)  # sparse: content is never read
        for method in ("events", "poll"):
            cost = asyncio.run(_watch_cost(folder, method, delivered, new))
            results.append({"method": method, "pairs_in_folder": delivered, **cost})
    return results


@app.command()
def main(
    minutes: Annotated[float, typer.Option(help="Length of the watched run.")] = 30.0,
    fast_speed: Annotated[
        float, typer.Option(help="The faster DAQ, × real time: half the held maximum.")
    ] = 4.0,
    fast_files: Annotated[int, typer.Option(help="Pairs of the faster run.")] = 150,
    pairs: Annotated[int, typer.Option(help="Pairs in the full folder.")] = 20_000,
    record: Annotated[bool, typer.Option(help="Write docs/benchmarks.md and results.")] = True,
) -> None:
    """Measure and print (and record) the live tables."""
    with tempfile.TemporaryDirectory(prefix="quax-bench-live-") as scratch:
        root = Path(scratch)
        costs = watch_cost(root / "watch", pairs=pairs)
        live = latency(root / "latency", files=int(minutes * 60 / PERIOD))
        fast = latency(root / "fast", files=fast_files, speed=fast_speed)
    lines = [
        f"Machine: {recording.machine()}; broker, producer, two FFT workers, aggregator, API, "
        "the DAQ emulator and the WebSocket client all on it.",
        "",
        f"Watched folder, pairs of 2²³ samples each written in 16 pieces over half the DAQ's "
        f"period, sent while written: {live['files']} at the real rate "
        f"({live['minutes']:.0f} min), then {fast['files']} at {fast['speed']:g}× "
        f"({fast['minutes']:.1f} min; {16 * fast['speed']:.0f} MB/s, half the highest rate "
        "held in the sustained table):",
        "",
        "| from the last byte on disk to the spectrum on the WebSocket | goal (1×, "
        f"{fast['speed']:g}×) | 1× | {fast['speed']:g}× |",
        "|---|---:|---:|---:|",
        *(
            f"| {label} | {goal} | {live[key] * 1e3:.0f} ms | {fast[key] * 1e3:.0f} ms |"
            for label, key, goal in [
                ("median", "median_s", ""),
                ("p95", "p95_s", ""),
                ("p99", "p99_s", "≤ 1 s, ≤ 2 s"),
                ("max", "max_s", ""),
            ]
        ),
        "| slope against the file number (ms per file) | 0 | "
        + " | ".join(
            f"{r['slope_ms_per_file']:+.3f} ± {r['slope_stderr_ms_per_file']:.3f}"
            for r in (live, fast)
        )
        + " |",
        f"| incomplete files | 0 | {live['incomplete']} | {fast['incomplete']} |",
        "",
        "Cost of watching, per batch of events (inotify) or per poll, while new pairs arrive "
        "one by one:",
        "",
        "| method | pairs in the folder | first listing | looks | median | p99 |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {c['method']} | {c['pairs_in_folder']:,} | {c['start_s']:.2f} s | {c['looks']} "
            f"| {c['median_us']:.0f} µs | {c['p99_us']:.0f} µs |"
            for c in costs
        ),
    ]
    table = "\n".join(lines)
    typer.echo(table)
    if record:
        recording.record(
            "live",
            "The live DAQ path (`make bench-live`)",
            table,
            {"latency": live, "fast": fast, "watch": costs},
        )


if __name__ == "__main__":
    app()
