"""Soak: thousands of small files through the whole pipeline; the memory of every process.

A synthetic run of ``--files`` files of ``--slices`` slices each is replayed as fast as the
pipeline takes it (``--seconds-per-pair``) through two FFT workers, the aggregator and the
API on a fresh local broker. The resident memory (VmRSS) of every process, the broker
included, is read at the start (after ``--warm`` files, when imports, FFT plans and buffers
are in place), in the middle and at the end; growth is end over start. The run must come
out complete. Every few seconds it also samples each process's memory beside each FFT
worker's lag and partitions (its own metrics), so that a step in a worker's memory can be
set against its backlog. Writes the table between the soak markers of docs/benchmarks.md,
the series as docs/soak.png and raw figures to bench/results/soak.json.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import httpx
import matplotlib
import typer
from prometheus_client.parser import text_string_to_metric_families

matplotlib.use("Agg")
from matplotlib import pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import recording  # noqa: E402
from localkafka import LocalKafka, free_port  # noqa: E402
from pipeline import Pipeline  # noqa: E402

N_FFT = 3072
WORKERS = ("fft-worker-1", "fft-worker-2")
SAMPLE_SECONDS = 5.0
PLOT = ROOT / "docs" / "soak.png"

app = typer.Typer(add_completion=False)


def files_done(port: int, run_id: str) -> int:
    """Files the API has in the run's latest update."""
    response = httpx.get(f"http://127.0.0.1:{port}/api/v1/runs", timeout=10)
    return next((r["files"] for r in response.json() if r["run_id"] == run_id), 0)


def worker_state(port: int) -> dict[str, float]:
    """A worker's backlog (records summed over its partitions), partitions and chunks done."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    state = {"lag": 0.0, "partitions": 0.0, "chunks": 0.0}
    names = {
        "quax_consumer_lag": "lag",
        "quax_fft_assigned_partitions": "partitions",
        "quax_fft_chunks_total": "chunks",
    }
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in names:
                state[names[sample.name]] += sample.value
    return state


def soak(root: Path, *, files: int, slices: int, warm: int, seconds_per_pair: float) -> dict:
    kafka = LocalKafka.fresh(root / "kafka")
    kafka.run("start")
    pipe = Pipeline(kafka, root / "pipe")
    marks = {"start": warm, "middle": (warm + files) // 2, "end": files}
    samples: dict[str, dict[str, float]] = {}
    series: list[dict[str, float]] = []
    metrics = {name: free_port() for name in WORKERS}
    try:
        pipe.start_aggregator()
        for name in WORKERS:
            pipe.start_worker(name, QUAX_FFT_WORKER_METRICS_PORT=str(metrics[name]))
        port = free_port()
        pipe.start_api(port=port)
        started = time.monotonic()
        pipe.start(
            "producer", "quax-producer", "run", "--source", "synthetic", "--run-id", "soak",
            "--seed", "4", "--files", str(files), "--samples-per-file", str(N_FFT * slices),
            "--seconds-per-pair", str(seconds_per_pair),
        )  # fmt: skip
        next_sample = started
        for name, mark in marks.items():
            while (done := files_done(port, "soak")) < mark:
                producer = pipe.processes.get("producer")
                alive = producer is not None and producer.poll() in (None, 0)
                assert alive, pipe.log("producer")
                assert time.monotonic() - started < 3600, f"{done} files after an hour"
                if time.monotonic() >= next_sample:
                    series.append(_sample(pipe, kafka.pid, metrics, done, started))
                    next_sample += SAMPLE_SECONDS
                time.sleep(0.5)
            samples[name] = _rss(pipe, kafka.pid)
            samples[name]["files"] = done
            samples[name]["seconds"] = round(time.monotonic() - started, 1)
        run = httpx.get(f"http://127.0.0.1:{port}/api/v1/runs/soak", timeout=30).json()
    finally:
        pipe.close()
        kafka.run("stop")
    return {
        "files": files,
        "slices_per_file": slices,
        "run_files": run["files"],
        "run_incomplete_files": run["incomplete_files"],
        "run_slices": run["slices"],
        "rss_mib": samples,
        "series": series,
    }


def _rss(pipe: Pipeline, broker: int) -> dict[str, float]:
    """RSS of every running process; one that ends while it is read (the producer) is left out."""
    pids = {n: p.pid for n, p in pipe.processes.items() if p.poll() is None}
    pids["broker"] = broker
    rss = {}
    for name, pid in sorted(pids.items()):
        try:
            rss[name] = round(recording.rss_mib(pid), 1)
        except FileNotFoundError:
            assert name != "broker", "the broker is gone"
    return rss


def _sample(
    pipe: Pipeline, broker: int, metrics: dict[str, int], done: int, started: float
) -> dict[str, float]:
    """One point of the series: every process's RSS, and each worker's lag and partitions."""
    point = {"seconds": round(time.monotonic() - started, 1), "files": done}
    point.update({f"rss {n}": v for n, v in _rss(pipe, broker).items()})
    for name, port in metrics.items():
        point.update({f"{key} {name}": v for key, v in worker_state(port).items()})
    return point


def plot(series: list[dict[str, float]], path: Path) -> None:
    """Memory of every process over the run, and each worker's backlog below it."""
    seconds = [p["seconds"] / 60 for p in series]
    figure, (memory, lag) = plt.subplots(2, 1, sharex=True, figsize=(9, 6), height_ratios=(2, 1))
    for key in sorted({k for p in series for k in p if k.startswith("rss ")}):
        memory.plot(seconds, [p.get(key, float("nan")) for p in series], label=key[4:])
    memory.set_ylabel("resident memory (MiB)")
    memory.legend(loc="upper left", ncols=3, fontsize="small")
    memory.grid(alpha=0.3)
    for name in WORKERS:
        lag.plot(seconds, [p[f"lag {name}"] for p in series], label=name)
    lag.set_ylabel("backlog (chunks)")
    lag.set_xlabel("minutes into the run")
    lag.legend(loc="upper left", fontsize="small")
    lag.grid(alpha=0.3)
    figure.suptitle("Soak: memory of every process and the FFT workers' backlog")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _row(name: str, rss: dict[str, dict[str, float]]) -> str:
    start, middle = rss["start"][name], rss["middle"].get(name)
    last = rss["end"].get(name, middle)
    cells = [f"{v:.0f}" if v is not None else "–" for v in (start, middle, rss["end"].get(name))]
    growth = "–" if last is None else f"{100 * (last / start - 1):+.1f} %"
    return f"| {name} | {' | '.join(cells)} | {growth} |"


@app.command()
def main(
    files: Annotated[int, typer.Option(help="Files in the run.")] = 9000,
    slices: Annotated[int, typer.Option(help="Slices of 3072 samples per file.")] = 16,
    warm: Annotated[int, typer.Option(help="Files before the first reading.")] = 200,
    seconds_per_pair: Annotated[float, typer.Option(help="Replay pace.")] = 0.05,
    record: Annotated[bool, typer.Option(help="Write docs/benchmarks.md and results.")] = True,
) -> None:
    """Measure and print (and record) the soak table."""
    with tempfile.TemporaryDirectory(prefix="quax-bench-soak-") as scratch:
        result = soak(
            Path(scratch), files=files, slices=slices, warm=warm, seconds_per_pair=seconds_per_pair
        )
    rss = result["rss_mib"]
    processes = [n for n in rss["start"] if n not in ("files", "seconds")]
    minutes = rss["end"]["seconds"] / 60
    lines = [
        f"Machine: {recording.machine()}; broker, producer, two FFT workers, aggregator and "
        "API on it.",
        "",
        f"{result['files']:,} files of {result['slices_per_file']} slices of {N_FFT} samples, "
        f"replayed as fast as the pipeline took them ({minutes:.1f} min); the run came out with "
        f"{result['run_files']:,} files, {result['run_incomplete_files']} incomplete. Resident "
        f"memory (MiB) after {rss['start']['files']:,}, {rss['middle']['files']:,} and "
        f"{rss['end']['files']:,} files:",
        "",
        "| process | start | middle | end | growth (goal < 10 %) |",
        "|---|---:|---:|---:|---:|",
        *(_row(n, rss) for n in processes),
        "",
        (
            ""
            if "producer" in rss["end"]
            else "The producer ends with its replay; its last reading is the middle one. "
        )
        + "The broker is a JVM filling its heap toward its fixed bound (-Xmx 512 MiB, "
        "tools/kafka/kafka.sh). Sampled every "
        f"{SAMPLE_SECONDS:.0f} s, with each FFT worker's backlog: ![soak](soak.png)",
    ]
    table = "\n".join(lines)
    typer.echo(table)
    if record:
        plot(result["series"], PLOT)
        recording.record("soak", "Memory over a long run (`make bench-soak`)", table, result)


if __name__ == "__main__":
    app()
