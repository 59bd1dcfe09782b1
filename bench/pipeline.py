"""Pipeline benchmark: throughput and latency of producer → workers → aggregator on a real broker.

Two measurements, each on a fresh local broker with the services as real processes:
- throughput: pre-written DAQ files (2²³ samples) sent as fast as possible; the time from
  the producer's start to the last file spectrum, with 1 and 2 FFT workers;
- latency: the synthetic DAQ at the real rate (4.2 s per pair); the time from each
  file's completion (end of its slot) to its spectrum being emitted.
Writes a table between the pipeline markers of docs/benchmarks.md and raw figures to
bench/results/pipeline.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from localkafka import LocalKafka  # noqa: E402
from pipeline import Pipeline  # noqa: E402

from quaxspec.daq import DEFAULT_N_SAMPLES, write_pair  # noqa: E402
from quaxspec.synthetic import SyntheticDaq  # noqa: E402

BEGIN, END = "<!-- pipeline:begin -->", "<!-- pipeline:end -->"
PAIR_MB = 2 * 4 * DEFAULT_N_SAMPLES / 1e6
REAL_TIME_S = 4.2

app = typer.Typer(add_completion=False)


def throughput(
    kafka: LocalKafka, root: Path, data: Path, *, workers: int, files: int
) -> dict[str, float]:
    """Seconds from the producer's start until every file spectrum is out."""
    pipe = Pipeline(kafka, root / f"throughput-{workers}")
    try:
        pipe.start_aggregator()
        for n in range(workers):
            pipe.start_worker(f"fft-worker-{n}")
        started = time.monotonic()
        options = ["--source", "directory", "--directory", str(data), "--run-id", "bench"]
        pipe.start("producer", "quax-producer", "run", *options, "--as-fast-as-possible")
        outputs = pipe.collect({"bench": files}, timeout=900)
        seconds = time.monotonic() - started
    finally:
        pipe.close()
    assert all(s.complete for s in outputs.files.values())
    return {
        "workers": workers,
        "files": files,
        "seconds": seconds,
        "mb_per_s": files * PAIR_MB / seconds,
        "times_real_time": files * REAL_TIME_S / seconds,
    }


def latency(kafka: LocalKafka, root: Path, *, files: int) -> dict[str, float]:
    """End-to-end latency at the real rate, from the emitted spectra's own timestamps."""
    pipe = Pipeline(kafka, root / "latency")
    try:
        pipe.start_aggregator()
        pipe.start_worker("fft-worker-1")
        pipe.start_worker("fft-worker-2")
        options = ["--source", "synthetic", "--run-id", "live", "--files", str(files)]
        pipe.start("producer", "quax-producer", "run", *options)
        outputs = pipe.collect({"live": files}, timeout=files * REAL_TIME_S + 120)
    finally:
        pipe.close()
    delays = sorted(s.emitted_time - s.daq_time for s in outputs.files.values())
    return {
        "files": files,
        "median_s": statistics.median(delays),
        "max_s": delays[-1],
    }


@app.command()
def main(
    files: Annotated[int, typer.Option(help="Files for the throughput runs.")] = 24,
    live_files: Annotated[int, typer.Option(help="Files for the real-rate latency run.")] = 10,
    record: Annotated[bool, typer.Option(help="Write docs/benchmarks.md and results.")] = True,
) -> None:
    """Measure and print (and record) the pipeline table."""
    with tempfile.TemporaryDirectory(prefix="quax-bench-") as scratch:
        root = Path(scratch)
        data = root / "daq"
        data.mkdir()
        daq = SyntheticDaq(seed=9)
        for number in range(files):
            i, q = daq.samples(number)
            write_pair(data, number, i, q)
        kafka = LocalKafka.fresh(root / "kafka")
        kafka.run("start")
        try:
            runs = [throughput(kafka, root, data, workers=w, files=files) for w in (1, 2)]
            live = latency(kafka, root, files=live_files)
        finally:
            kafka.run("stop")
    lines = [
        "Everything on this one 2-core machine: broker, producer, workers, aggregator.",
        "",
        "| FFT workers | files (2²³ samples) | seconds | MB/s | × real time |",
        "|---:|---:|---:|---:|---:|",
        *(
            f"| {r['workers']} | {r['files']} | {r['seconds']:.1f} | {r['mb_per_s']:.0f} | "
            f"{r['times_real_time']:.1f} |"
            for r in runs
        ),
        "",
        f"Latency at the real rate (2 workers, {live['files']} files, 4.2 s per pair): from the "
        f"end of a file's acquisition to its spectrum, median {live['median_s'] * 1e3:.0f} ms, "
        f"max {live['max_s'] * 1e3:.0f} ms.",
    ]
    table = "\n".join(lines)
    typer.echo(table)
    if record:
        out = ROOT / "bench" / "results" / "pipeline.json"
        out.write_text(json.dumps({"throughput": runs, "latency": live}, indent=2) + "\n")
        doc = ROOT / "docs" / "benchmarks.md"
        head, rest = doc.read_text().split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        doc.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")


if __name__ == "__main__":
    app()
