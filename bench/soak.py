"""Soak: thousands of small files through the whole pipeline; the memory of every process.

A synthetic run of ``--files`` files of ``--slices`` slices each is replayed as fast as the
pipeline takes it (``--seconds-per-pair``) through two FFT workers, the aggregator and the
API on a fresh local broker. The resident memory (VmRSS) of every process, the broker
included, is read at the start (after ``--warm`` files, when imports, FFT plans and buffers
are in place), in the middle and at the end; growth is end over start. The run must come
out complete. Writes the table between the soak markers of docs/benchmarks.md and raw
figures to bench/results/soak.json.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import recording  # noqa: E402
from localkafka import LocalKafka, free_port  # noqa: E402
from pipeline import Pipeline  # noqa: E402

N_FFT = 3072

app = typer.Typer(add_completion=False)


def rss_mib(pid: int) -> float:
    """Resident memory of a process (MiB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def files_done(port: int, run_id: str) -> int:
    """Files the API has in the run's latest update."""
    response = httpx.get(f"http://127.0.0.1:{port}/api/v1/runs", timeout=10)
    return next((r["files"] for r in response.json() if r["run_id"] == run_id), 0)


def soak(root: Path, *, files: int, slices: int, warm: int, seconds_per_pair: float) -> dict:
    kafka = LocalKafka.fresh(root / "kafka")
    kafka.run("start")
    pipe = Pipeline(kafka, root / "pipe")
    marks = {"start": warm, "middle": (warm + files) // 2, "end": files}
    samples: dict[str, dict[str, float]] = {}
    try:
        pipe.start_aggregator()
        pipe.start_worker("fft-worker-1")
        pipe.start_worker("fft-worker-2")
        port = free_port()
        pipe.start_api(port=port)
        started = time.monotonic()
        pipe.start(
            "producer", "quax-producer", "run", "--source", "synthetic", "--run-id", "soak",
            "--seed", "4", "--files", str(files), "--samples-per-file", str(N_FFT * slices),
            "--seconds-per-pair", str(seconds_per_pair),
        )  # fmt: skip
        for name, mark in marks.items():
            while (done := files_done(port, "soak")) < mark:
                producer = pipe.processes.get("producer")
                alive = producer is not None and producer.poll() in (None, 0)
                assert alive, pipe.log("producer")
                assert time.monotonic() - started < 3600, f"{done} files after an hour"
                time.sleep(0.5)
            pids = {n: p.pid for n, p in pipe.processes.items() if p.poll() is None}
            pids["broker"] = kafka.pid
            samples[name] = {n: round(rss_mib(pid), 1) for n, pid in sorted(pids.items())}
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
    }


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
        "tools/kafka/kafka.sh).",
    ]
    table = "\n".join(lines)
    typer.echo(table)
    if record:
        recording.record("soak", "Memory over a long run (`make bench-soak`)", table, result)


if __name__ == "__main__":
    app()
