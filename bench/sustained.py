"""Sustained rate and cost per process: the chain held at a rate for minutes, each process measured.

On a fresh local broker per run, with the services as real processes, for 1 and 2
producers (each taking a shard of the run's files) and 1 and 2 FFT workers, the producers
paced at each of ``--rates`` (MB/s of samples, in all) for a window of
``--seconds`` (120 s or more) after a warm-up. A rate is held when the backlog (pairs sent
minus file spectra out, sampled each second) stays bounded: at most ``MAX_BACKLOG`` files
and no upward trend (slope at most ``MAX_SLOPE`` files a minute). CPU (cores) and peak RSS
of every process, the broker's included, are measured over the same window.

A producer sending as fast as it can is not a measure of the chain: on two shared cores it
takes CPU from the workers, the backlog grows without bound and less comes out (53 MB/s
with one worker, against more than 80 held when paced). So rates are held, not raced.

Then, with 2 workers, the cost at the real rate (16 MB/s): CPU seconds per second of DAQ
data for each process. The DAQ folder holds symbolic links to a few distinct pairs, so
that minutes of data take the disk space of a few files (the page cache serves them, as
it serves a DAQ's freshly written files). The API and its WebSocket are not in this chain
(`make bench-live` measures them).

Records its table in docs/benchmarks.md and the raw figures in bench/results/sustained.json.
"""

from __future__ import annotations

import datetime
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from localkafka import LocalKafka  # noqa: E402
from pipeline import Pipeline  # noqa: E402
from recording import machine, peak_rss_mib, process_cpu, record  # noqa: E402

from quaxspec.daq import DEFAULT_N_SAMPLES, pair_paths, write_pair  # noqa: E402
from quaxspec.spectra import FileSpectrum  # noqa: E402
from quaxspec.synthetic import SyntheticDaq  # noqa: E402
from quaxspec.topics import SPECTRA  # noqa: E402

PAIR_MB = 2 * 4 * DEFAULT_N_SAMPLES / 1e6  # I and Q, float32: 67.1 MB
#: A held rate: the backlog stays within this many files, with no trend above this slope.
MAX_BACKLOG = 8
MAX_SLOPE = 2.0
REAL_TIME_MB_S = 16.0
DISTINCT_PAIRS = 6
WARMUP_S = 20.0

app = typer.Typer(add_completion=False)


class Window:
    """CPU of each process between ``start`` and ``start + seconds`` (monotonic), in a thread."""

    def __init__(self, pids: dict[str, int], start: float, seconds: float) -> None:
        self.pids, self.start, self.seconds = pids, start, seconds
        self.cores: dict[str, float] = {}
        self._thread = threading.Thread(target=self._measure, daemon=True)
        self._thread.start()

    def _measure(self) -> None:
        time.sleep(max(0.0, self.start - time.monotonic()))
        before = {name: process_cpu(pid) for name, pid in self.pids.items()}
        time.sleep(self.seconds)
        self.cores = {
            name: (process_cpu(pid) - before[name]) / self.seconds
            for name, pid in self.pids.items()
        }

    def result(self) -> dict[str, float]:
        self._thread.join()
        return self.cores


def daq_folder(root: Path, files: int) -> Path:
    """``files`` pairs: links to DISTINCT_PAIRS pairs written once."""
    distinct, folder = root / "distinct", root / "daq"
    if not distinct.exists():
        distinct.mkdir()
        daq = SyntheticDaq(seed=3)
        for number in range(DISTINCT_PAIRS):
            write_pair(distinct, number, *daq.samples(number))
    folder.mkdir(exist_ok=True)
    for number in range(files):
        for link, target in zip(
            pair_paths(folder, number), pair_paths(distinct, number % DISTINCT_PAIRS), strict=True
        ):
            if not link.exists():
                link.symlink_to(target)
    return folder


def _sent_times(pipe: Pipeline) -> list[float]:
    """Wall-clock times of the producers' "Sent a file." lines."""
    times = []
    for log in pipe.root.glob("producer*.log"):
        for line in log.read_text().splitlines():
            if line.startswith("{") and '"Sent a file."' in line:
                stamp = json.loads(line)["timestamp"]
                times.append(datetime.datetime.fromisoformat(stamp).timestamp())
    return sorted(times)


def start_chain(
    pipe: Pipeline,
    *,
    workers: int,
    daq: Path,
    files: int,
    run_id: str,
    mb_per_s: float,
    producers: int = 1,
) -> tuple[float, float]:
    """The aggregator and workers, then the producers paced at ``mb_per_s`` in all.

    Several producers take one shard of the run's files each (``--shard K/N``), each paced
    at its share of the rate. Returns when the producers started, monotonic and wall-clock.
    """
    pipe.start_aggregator()
    for n in range(workers):
        pipe.start_worker(f"fft-worker-{n + 1}")
    time.sleep(10)  # the workers and the aggregator join their groups
    started = time.monotonic(), time.time()
    command = ["quax-producer", "run", "--source", "directory", "--directory", str(daq),
               "--files", str(files), "--run-id", run_id]  # fmt: skip
    if producers == 1:
        pipe.start("producer", *command, "--mb-per-s", str(mb_per_s))
        return started
    for k in range(1, producers + 1):
        pipe.start(f"producer-{k}", *command, "--shard", f"{k}/{producers}",
                   "--mb-per-s", str(mb_per_s / producers))  # fmt: skip
    return started


def run_chain(
    kafka: LocalKafka,
    root: Path,
    *,
    name: str,
    workers: int,
    mb_per_s: float,
    seconds: float,
    producers: int = 1,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One measured run: the chain fed at ``mb_per_s``.

    The chain is stopped when the window ends: what comes out after it is not measured.
    """
    files = int(mb_per_s * (seconds + WARMUP_S + 30) / PAIR_MB) + 2
    daq = daq_folder(root, files)
    pipe = Pipeline(kafka, root / name, **(env or {}))
    try:
        started, wall_start = start_chain(
            pipe, workers=workers, daq=daq, files=files, run_id=name, mb_per_s=mb_per_s,
            producers=producers,
        )  # fmt: skip
        pids = {"broker": kafka.pid, **{n: p.pid for n, p in pipe.processes.items()}}
        window = Window(pids, started + WARMUP_S, seconds)
        cores = window.result()
        rss = {n: peak_rss_mib(pid) for n, pid in pids.items()}
        for name_, process in pipe.processes.items():  # the producer still had files to send
            assert process.poll() is None, f"{name_} ended early:\n{pipe.log(name_)}"
        emitted = sorted(
            FileSpectrum.from_bytes(value).emitted_time
            for _, value in pipe.topic_records(SPECTRA)
            if value is not None
        )
        sent = _sent_times(pipe)
    finally:
        pipe.close()
    lo, hi = wall_start + WARMUP_S, wall_start + WARMUP_S + seconds
    out_in_window = [t for t in emitted if lo <= t < hi]
    grid = np.arange(lo, hi, 1.0)
    backlog = np.searchsorted(sent, grid, side="right") - np.searchsorted(emitted, grid, "right")
    slope = float(np.polyfit(grid - lo, backlog, 1)[0] * 60)
    mb_out = len(out_in_window) * PAIR_MB / seconds
    largest = int(backlog.max())
    return {
        "name": name,
        "producers": producers,
        "workers": workers,
        "paced_mb_per_s": mb_per_s,
        "files": files,
        "seconds": seconds,
        "mb_per_s_out": mb_out,
        "max_backlog_files": largest,
        "backlog_slope_files_per_min": slope,
        "held": largest <= MAX_BACKLOG and slope <= MAX_SLOPE,
        "cores": cores,
        "peak_rss_mb": rss,
    }


def _row(r: dict[str, Any]) -> str:
    cores = r["cores"]
    workers = sum(v for k, v in cores.items() if k.startswith("fft-worker"))
    producers = sum(v for k, v in cores.items() if k.startswith("producer"))
    services = max(v for k, v in r["peak_rss_mb"].items() if k != "broker")
    rate = r["paced_mb_per_s"]
    return (
        f"| {r.get('producers', 1)} | {r['workers']} | {rate:.0f} ({rate / REAL_TIME_MB_S:.1f}×) "
        f"| {r['mb_per_s_out']:.0f} | {r['max_backlog_files']} "
        f"| {r['backlog_slope_files_per_min']:+.1f} | {'yes' if r['held'] else '**no**'} "
        f"| {cores['broker']:.2f} | {producers:.2f} | {workers:.2f} "
        f"| {cores['aggregator']:.2f} | {sum(cores.values()):.2f} | {services:.0f} |"
    )


def table(runs: list[dict[str, Any]], real: dict[str, Any]) -> str:
    held = [r for r in runs if r["held"]]
    best = max((r["paced_mb_per_s"] for r in held), default=0.0) / REAL_TIME_MB_S
    per_second = {n: c * REAL_TIME_MB_S / real["paced_mb_per_s"] for n, c in real["cores"].items()}
    total = sum(per_second.values())
    rss = max(v for r in [*runs, real] for k, v in r["peak_rss_mb"].items() if k != "broker")
    lines = [
        f"Machine: {machine()}; broker, producer, workers and aggregator all on it.",
        "",
        f"Each run: the producer paced at the input rate; {WARMUP_S:.0f} s of warm-up, then a "
        f"{runs[0]['seconds']:.0f} s window in which the spectra out, the backlog (pairs sent − "
        "file spectra out, each second) and every process's CPU are measured. Held: a backlog "
        f"of at most {MAX_BACKLOG} files and a slope of at most {MAX_SLOPE:g} files a minute. "
        "CPU in cores (1.0 = one core busy); RSS is the largest peak of the services (the "
        "broker's JVM heap is capped at 512 MB).",
        "",
        "| producers | FFT workers | input MB/s | MB/s out | largest backlog (files) "
        "| backlog slope (files/min) | held | broker | producers | workers | aggregator "
        "| total cores | peak RSS (MB) |",
        "|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
        *map(_row, runs),
        "",
        f"Cost at the real rate (2 workers, {real['seconds']:.0f} s at 16 MB/s): CPU seconds per "
        "second of DAQ data (= cores at 1×).",
        "",
        "| process | CPU s per s of data | peak RSS (MB) |",
        "|---|---:|---:|",
        *(
            f"| {n} | {c:.3f} | {real['peak_rss_mb'][n]:.0f} |"
            for n, c in sorted(per_second.items())
        ),
        f"| total | {total:.3f} | |",
        "",
        "| goal | target | measured | ratio |",
        "|---|---:|---:|---:|",
        f"| sustained rate, everything on 2 cores | 15× (240 MB/s) | {best:.1f}× "
        f"| {best / 15:.2f} |",
        f"| first milestone | 10× (160 MB/s) | {best:.1f}× | {best / 10:.2f} |",
        f"| CPU at the real rate, every process | ≤ 0.10 cores | {total:.2f} cores "
        f"| {total / 0.10:.1f} |",
        f"| RSS per service | ≤ 250 MB | {rss:.0f} MB | {rss / 250:.2f} |",
    ]
    return "\n".join(lines)


@app.command()
def main(
    rates: Annotated[str, typer.Option(help="Input rates to hold, MB/s, comma-separated.")] = (
        "64,96,128"
    ),
    seconds: Annotated[float, typer.Option(help="Measured window of each run (s).")] = 120.0,
    real_seconds: Annotated[float, typer.Option(help="Window at the real rate (s).")] = 120.0,
    producers: Annotated[
        str, typer.Option(help="Producers feeding the run (shards), comma-separated.")
    ] = "1,2",
    real_rate: Annotated[bool, typer.Option(help="Also measure the real rate.")] = True,
    save: Annotated[bool, typer.Option(help="Record in docs/benchmarks.md.")] = True,
) -> None:
    """Each rate with 1 and 2 producers × 1 and 2 workers (higher rates skipped once one is
    not held), then 1×."""
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="quax-bench-sustained-") as scratch:
        root = Path(scratch)

        def measured(
            name: str, workers: int, rate: float, window: float, producers: int = 1
        ) -> dict[str, Any]:
            # A fresh broker per run: a run writes tens of gigabytes.
            kafka = LocalKafka.fresh(root / f"kafka-{name}")
            kafka.run("start")
            try:
                figures = run_chain(kafka, root, name=name, workers=workers, mb_per_s=rate,
                                    seconds=window, producers=producers)  # fmt: skip
            finally:
                kafka.run("stop")
                shutil.rmtree(root / f"kafka-{name}", ignore_errors=True)
            print(json.dumps(figures), flush=True)
            return figures

        for feeding in sorted(int(p) for p in producers.split(",")):
            for workers in (1, 2):
                for rate in sorted(float(r) for r in rates.split(",")):
                    name = f"p{feeding}-w{workers}-{rate:.0f}"
                    runs.append(measured(name, workers, rate, seconds, feeding))
                    if not runs[-1]["held"]:
                        break
        if not real_rate:
            return
        real = measured("real", 2, REAL_TIME_MB_S, real_seconds)
    text = table(runs, real)
    print(text)
    if save:
        title = "Sustained rate and cost per process (`make bench-sustained`)"
        record("sustained", title, text, {"runs": runs, "real": real})


if __name__ == "__main__":
    app()
