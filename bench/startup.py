"""What a service that only reads messages installs and costs at start: the API and the archiver.

For each source tree (this checkout, and optionally an earlier revision checked out with
``git worktree``), each service gets a virtualenv of its own, made as its image makes it
(``uv sync --frozen --no-dev --no-editable --package``). Measured: the virtualenv's size on
disk and whether it holds the FFT kernel's libraries; then, on the local broker, the time
from the process's start to the API answering /readyz (the archiver: logging that it
archives), and its resident memory then. Each start is repeated and the median kept.

Run with `make bench-startup`; the result is recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import recording
from localkafka import LocalKafka, free_port
from pipeline import Pipeline

ROOT = recording.ROOT
UV = ROOT / ".tools" / "bin" / "uv"
KERNEL = ("numba", "llvmlite", "pyfftw")
SERVICES = {"api": "quax-api", "archiver": "quax-archiver"}

app = typer.Typer(add_completion=False)


def make_venv(source: Path, package: str, venv: Path) -> dict[str, object]:
    """The service's virtualenv as its image has it; its size and kernel libraries."""
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run(
        [str(UV), "sync", "--frozen", "--no-dev", "--no-editable", "--quiet", "--package",
         package], cwd=source, env=env, check=True,
    )  # fmt: skip
    size = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink())
    site = next(venv.glob("lib/python3*/site-packages"))
    return {
        "venv_mb": round(size / 1e6, 1),
        "kernel": [name for name in KERNEL if (site / name).is_dir()],
    }


def start_once(pipe: Pipeline, venv: Path, service: str) -> tuple[float, float]:
    """Seconds from exec to ready, and the RSS (MiB) then."""
    log = pipe.root / f"{service}.log"
    log.unlink(missing_ok=True)
    port = free_port()
    command = {
        "api": ["quax-api", "serve"],
        "archiver": ["quax-archiver", "run"],
    }[service]
    env = {**pipe.env, "QUAX_API_PORT": str(port), "QUAX_API_HOST": "127.0.0.1"}
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(venv / "bin" / command[0]), *command[1:]], env=env, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        while not _ready(service, port, log):
            assert process.poll() is None, log.read_text()[-2000:]
            assert time.perf_counter() - started < 120, f"{service} not ready in 120 s"
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        return seconds, recording.rss_mib(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _ready(service: str, port: int, log: Path) -> bool:
    if service == "archiver":
        return b'"event": "Archiving."' in log.read_bytes()
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def measure(sources: dict[str, Path], scratch: Path, repeats: int) -> list[dict[str, object]]:
    kafka = LocalKafka.fresh(scratch / "kafka")
    kafka.run("start")
    rows: list[dict[str, object]] = []
    try:
        pipe = Pipeline(kafka, scratch / "pipe")
        for label, source in sources.items():
            for service, package in SERVICES.items():
                venv = scratch / f"venv-{label}-{service}"
                row: dict[str, object] = {"tree": label, "service": service}
                row |= make_venv(source, package, venv)
                start_once(pipe, venv, service)  # the first start compiles the bytecode
                runs = [start_once(pipe, venv, service) for _ in range(repeats)]
                row["ready_s"] = round(statistics.median(s for s, _ in runs), 2)
                row["rss_mib"] = round(statistics.median(r for _, r in runs), 1)
                rows.append(row)
        pipe.close()
    finally:
        kafka.run("stop")
    return rows


@app.command()
def main(
    before: Annotated[
        str | None, typer.Option(help="An earlier revision to measure beside this checkout.")
    ] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Starts per service (median kept).")] = 5,
    record: Annotated[bool, typer.Option(help="Record in docs/benchmarks.md.")] = True,
) -> None:
    """Measure and print (and record) the start-up table."""
    with tempfile.TemporaryDirectory(prefix="quax-bench-startup-") as name:
        scratch = Path(name)
        sources = {"this tree": ROOT}
        if before:
            tree = scratch / "before"
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), before],
                           cwd=ROOT, check=True, capture_output=True)  # fmt: skip
            sources = {before: tree, **sources}
        try:
            rows = measure(sources, scratch, repeats)
        finally:
            if before:
                subprocess.run(["git", "worktree", "remove", "--force", str(scratch / "before")],
                               cwd=ROOT, check=True)  # fmt: skip
    lines = [
        f"Machine: {recording.machine()}; the local broker on it. Each service in a "
        "virtualenv of its own, as its image installs it; ready = the API answering /readyz "
        f"(the archiver logging that it archives) on empty topics; median of {repeats} starts "
        "after a first one.",
        "",
        "| tree | service | virtualenv | kernel libraries installed | start to ready | "
        "RSS when ready |",
        "|---|---|---:|---|---:|---:|",
    ]
    for r in rows:
        kernel = ", ".join(r["kernel"]) or "none"  # type: ignore[arg-type]
        lines.append(
            f"| {r['tree']} | {r['service']} | {r['venv_mb']} MB | {kernel} | "
            f"{r['ready_s']} s | {r['rss_mib']} MiB |"
        )
    table = "\n".join(lines)
    print(table)
    if record:
        recording.record("startup", "Start-up of the services that read messages", table, rows)


if __name__ == "__main__":
    app()
