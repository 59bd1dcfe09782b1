"""Where each service's CPU goes at a sustained rate: py-spy samples of the running chain.

The chain (producer, FFT workers, aggregator) runs on a fresh local broker, the producer
paced at ``--rate`` MB/s of samples from a folder of linked pairs (as `make bench-sustained`).
After a warm-up, py-spy samples every service at once for ``--seconds`` (native frames
included, idle threads left out). For each service the table gives the share of its
samples spent in its busiest functions (self time: the function at the top of the stack),
and the collapsed stacks are kept in bench/results/profiles/ for flame graphs (for
example with speedscope, or ``flamegraph.pl``).

Records its tables in docs/benchmarks.md.
"""

from __future__ import annotations

import collections
import subprocess
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
from recording import machine, record  # noqa: E402
from sustained import PAIR_MB, WARMUP_S, daq_folder, start_chain  # noqa: E402

PY_SPY = ROOT / ".venv" / "bin" / "py-spy"
OUT = ROOT / "bench" / "results" / "profiles"

app = typer.Typer(add_completion=False)


def shares(
    collapsed: Path,
) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    """Samples in all; per function at the top of the stack, and anywhere in it."""
    total, top, anywhere = 0, collections.Counter[str](), collections.Counter[str]()
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_short(frame) for frame in stack.split(";")]
        if not frames:
            continue
        total += int(count)
        top[frames[-1]] += int(count)
        for frame in set(frames):
            anywhere[frame] += int(count)
    return total, top, anywhere


def _short(frame: str) -> str:
    # "function (path/to/module.py:line)" → "function (module.py)"; native: "name (lib.so)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return f"{name} ({where})" if where else name


@app.command()
def main(
    rate: Annotated[float, typer.Option(help="Input rate, MB/s of samples.")] = 80.0,
    workers: Annotated[int, typer.Option(help="FFT workers.")] = 1,
    seconds: Annotated[float, typer.Option(help="Seconds sampled.")] = 30.0,
    top: Annotated[int, typer.Option(help="Functions shown per service.")] = 8,
    save: Annotated[bool, typer.Option(help="Record in docs/benchmarks.md.")] = True,
) -> None:
    """Profile every service of a chain held at ``rate``."""
    OUT.mkdir(parents=True, exist_ok=True)
    files = int(rate * (seconds + WARMUP_S + 30) / PAIR_MB) + 2
    with tempfile.TemporaryDirectory(prefix="quax-bench-profile-") as scratch:
        root = Path(scratch)
        kafka = LocalKafka.fresh(root / "kafka")
        kafka.run("start")
        pipe = Pipeline(kafka, root / "chain")
        try:
            daq = daq_folder(root, files)
            start_chain(pipe, workers=workers, daq=daq, files=files, run_id="profile",
                        mb_per_s=rate)  # fmt: skip
            time.sleep(WARMUP_S)
            spies = {
                name: subprocess.Popen(
                    [
                        str(PY_SPY),
                        "record",
                        "--pid",
                        str(process.pid),
                        "--duration",
                        str(int(seconds)),
                        "--rate",
                        "200",
                        "--format",
                        "raw",
                        "--output",
                        str(OUT / f"{name}.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for name, process in pipe.processes.items()
            }
            for name, spy in spies.items():
                assert spy.wait(timeout=seconds + 120) == 0, f"py-spy failed on {name}"
        finally:
            pipe.close()
            kafka.run("stop")
    lines = [
        f"Machine: {machine()}. Chain held at {rate:g} MB/s ({rate / 16:.1f}× real time), "
        f"{workers} FFT worker(s); py-spy, {seconds:g} s at 200 samples/s of every thread not "
        "idle (Python frames; time in C code is charged to the Python function that called "
        "it; a thread waiting in select or poll counts as not idle, so these are shares of "
        "samples, not of CPU: `make bench-sustained` measures the CPU). Self: the share of a "
        "service's samples with the function at the top of the stack; total: anywhere in it.",
        "",
    ]
    for name in sorted(spies):
        total, tops, anywhere = shares(OUT / f"{name}.txt")
        busiest = [f for f, _ in tops.most_common(top)]
        lines += [
            f"**{name}** ({total} samples)",
            "",
            "| function | self % | total % |",
            "|---|---:|---:|",
            *(
                f"| `{f}` | {100 * tops[f] / total:.1f} | {100 * anywhere[f] / total:.1f} |"
                for f in busiest
            ),
            "",
        ]
    text = "\n".join(lines).rstrip()
    print(text)
    if save:
        record("profile", "Where the CPU goes (`make bench-profile`)", text, {"rate": rate})


if __name__ == "__main__":
    app()
