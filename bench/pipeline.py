"""Pipeline benchmark: how fast producer → workers → aggregator go on a real broker.

Pre-written DAQ files (2²³ samples) are sent as fast as possible, on a fresh local broker
with the services as real processes; the time runs from the producer's start to the last
file spectrum, with 1 and with 2 FFT workers. The latency the user sees is measured by
``bench/live.py`` (a watched folder, the wall clock at a pair's last byte on disk), and
the highest rate held for minutes by ``bench/sustained.py``. Writes a table between the
pipeline markers of docs/benchmarks.md and raw figures to bench/results/pipeline.json.
"""

from __future__ import annotations

import json
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
from recording import machine  # noqa: E402

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


@app.command()
def main(
    files: Annotated[int, typer.Option(help="Files for each run.")] = 96,
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
        finally:
            kafka.run("stop")
    lines = [
        f"Machine: {machine()}; broker, producer, workers and aggregator on it. Each run "
        "from the producer's start (about a second of it) to the last file spectrum.",
        "",
        "| FFT workers | files (2²³ samples) | seconds | MB/s | × real time |",
        "|---:|---:|---:|---:|---:|",
        *(
            f"| {r['workers']} | {r['files']} | {r['seconds']:.1f} | {r['mb_per_s']:.0f} | "
            f"{r['times_real_time']:.1f} |"
            for r in runs
        ),
    ]
    table = "\n".join(lines)
    typer.echo(table)
    if record:
        out = ROOT / "bench" / "results" / "pipeline.json"
        out.write_text(json.dumps({"throughput": runs}, indent=2) + "\n")
        doc = ROOT / "docs" / "benchmarks.md"
        head, rest = doc.read_text().split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        doc.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")


if __name__ == "__main__":
    app()
