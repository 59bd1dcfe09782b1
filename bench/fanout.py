"""WebSocket fan-out: many clients on one run, the delay from emission to each of them.

A run of 2²³-sample pairs at the real rate (one every 4.2 s, from a folder of linked pairs
as `make bench-sustained`) goes through one FFT worker, the aggregator and the API on a
fresh local broker, while ``--clients`` WebSocket clients listen to it. The clients run in
a process of their own, in one asyncio loop, and note the wall clock when each message
arrives. For every file spectrum and every client, the delivery delay is the arrival time
minus the spectrum's ``emitted_time`` (the aggregator's clock: the same machine), so it
covers Kafka, the API's consumer, the fan-out and the sockets, not the FFTs. The table
gives p50/p95/p99/max over all deliveries, the spread between the first and the last
client per file, the updates the API dropped for slow clients, and the API's CPU and peak
RSS over the run.

Writes its table into docs/benchmarks.md and raw figures to bench/results/fanout.json.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from localkafka import LocalKafka, free_port  # noqa: E402
from pipeline import Pipeline  # noqa: E402
from recording import machine, peak_rss_mib, process_cpu, record  # noqa: E402
from sustained import PAIR_MB, REAL_TIME_MB_S, daq_folder, start_chain  # noqa: E402

P99_GOAL_S = 0.1

#: The envelope and the fields before the arrays of a file update (docs/messages.md).
_FILE = re.compile(r'^\{"type":"file".*?"file_number":(\d+).*?"emitted_time":([-+.\deE]+)')

app = typer.Typer(add_completion=False)


async def _client(url: str, arrivals: list[tuple[int, float]], dropped: list[int]) -> None:
    import websockets  # a test dependency, needed only here

    async with websockets.connect(url, max_size=None) as socket:
        hello = json.loads(await socket.recv())
        assert hello["type"] == "hello", hello
        async for text in socket:
            now = time.time()
            assert isinstance(text, str)
            head = text[:2000]
            if match := _FILE.match(head):
                arrivals.append((int(match[1]), now - float(match[2])))
            elif head.startswith('{"type":"dropped"'):
                dropped.append(json.loads(text)["count"])


async def _clients(url: str, clients: int, files: int, seconds: float, out: Path) -> None:
    arrivals: list[list[tuple[int, float]]] = [[] for _ in range(clients)]
    dropped: list[list[int]] = [[] for _ in range(clients)]
    tasks = [asyncio.ensure_future(_client(url, arrivals[k], dropped[k])) for k in range(clients)]
    await asyncio.sleep(3)  # connected (a failure to connect ends the task early)
    for task in tasks:
        if task.done():
            task.result()
    Path(f"{out}.ready").touch()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and min(len({n for n, _ in a}) for a in arrivals) < files:
        await asyncio.sleep(1)
    for task in tasks:
        task.cancel()
    totals = [max(counts, default=0) for counts in dropped]  # each report is a running total
    cpu = time.process_time()
    out.write_text(json.dumps({"arrivals": arrivals, "dropped": totals, "cpu_s": cpu}))


@app.command(hidden=True)
def clients(url: str, count: int, files: int, seconds: float, out: Path) -> None:
    """Run ``count`` clients on ``url`` until each saw ``files`` files or ``seconds`` passed;
    write what they saw to ``out``."""
    asyncio.run(_clients(url, count, files, seconds, out))


def measure(root: Path, *, clients: int, files: int) -> dict[str, Any]:
    """One run of ``files`` pairs at the real rate with ``clients`` listeners."""
    kafka = LocalKafka.fresh(root / "kafka")
    kafka.run("start")
    pipe = Pipeline(kafka, root / "pipe")
    out = root / "clients.json"
    seconds = files * PAIR_MB / REAL_TIME_MB_S + 120  # the longest the clients wait
    try:
        port = free_port()
        api = pipe.start_api(port=port)
        url = f"ws://127.0.0.1:{port}/ws/v1/spectra?runs=fanout"
        command = [sys.executable, __file__, "clients", url, str(clients), str(files)]
        listeners = subprocess.Popen([*command, str(seconds), str(out)])
        deadline = time.monotonic() + 60
        while not Path(f"{out}.ready").exists():
            assert listeners.poll() is None, "the clients could not connect"
            assert time.monotonic() < deadline, "the clients did not connect"
            time.sleep(0.2)
        api_cpu, began = process_cpu(api.pid), time.monotonic()
        start_chain(
            pipe, workers=1, daq=daq_folder(root, files), files=files, run_id="fanout",
            mb_per_s=REAL_TIME_MB_S,
        )  # fmt: skip
        listeners.wait(timeout=seconds + 60)
        elapsed = time.monotonic() - began
        api_cores = (process_cpu(api.pid) - api_cpu) / elapsed
        api_rss = peak_rss_mib(api.pid)
    finally:
        pipe.close()
        kafka.run("stop")
    seen = json.loads(out.read_text())
    by_file: dict[int, list[float]] = {}
    for arrivals in seen["arrivals"]:
        for number, delay in arrivals:
            by_file.setdefault(number, []).append(delay)
    delays = np.array([d for ds in by_file.values() for d in ds])
    spreads = np.array([max(ds) - min(ds) for ds in by_file.values()])
    firsts = np.array([min(ds) for ds in by_file.values()])
    return {
        "clients": clients,
        "files": len(by_file),
        "deliveries": int(delays.size),
        "expected_deliveries": clients * files,
        "p50_s": float(np.percentile(delays, 50)),
        "p95_s": float(np.percentile(delays, 95)),
        "p99_s": float(np.percentile(delays, 99)),
        "max_s": float(delays.max()),
        "spread_p99_s": float(np.percentile(spreads, 99)),
        "first_client_p50_s": float(np.percentile(firsts, 50)),
        "first_client_p99_s": float(np.percentile(firsts, 99)),
        "clients_cores": seen["cpu_s"] / elapsed,
        "dropped": int(sum(seen["dropped"])),
        "api_cores": api_cores,
        "api_peak_rss_mb": api_rss,
    }


@app.callback(invoke_without_command=True)
def main(
    context: typer.Context,
    clients: Annotated[int, typer.Option(help="WebSocket clients on the run.")] = 100,
    files: Annotated[int, typer.Option(help="Pairs at the real rate (4.2 s each).")] = 60,
    save: Annotated[bool, typer.Option(help="Record in docs/benchmarks.md.")] = True,
) -> None:
    """Measure and print (and record) the fan-out table."""
    if context.invoked_subcommand is not None:
        return
    with tempfile.TemporaryDirectory(prefix="quax-bench-fanout-") as scratch:
        result = measure(Path(scratch), clients=clients, files=files)
    ms = {k[:-2]: v * 1e3 for k, v in result.items() if k.endswith("_s")}
    lines = [
        f"Machine: {machine()}; broker, producer, one FFT worker, aggregator, API and the "
        f"clients (one process, one asyncio loop) all on it. {result['files']} files of "
        f"2²³ samples at the real rate, each update a file spectrum (~240 KB of JSON) and "
        "a run spectrum (~370 KB).",
        "",
        "| from the aggregator's emission to each client | goal | measured |",
        "|---|---:|---:|",
        f"| clients | 100 | {result['clients']} |",
        f"| deliveries of file spectra | {result['expected_deliveries']:,} | "
        f"{result['deliveries']:,} |",
        f"| p50 | | {ms['p50']:.0f} ms |",
        f"| p95 | | {ms['p95']:.0f} ms |",
        f"| p99 | ≤ {P99_GOAL_S * 1e3:.0f} ms | {ms['p99']:.0f} ms |",
        f"| max | | {ms['max']:.0f} ms |",
        f"| the first client of each file: p50, p99 | | {ms['first_client_p50']:.0f} ms, "
        f"{ms['first_client_p99']:.0f} ms |",
        f"| first to last client, p99 over files | | {ms['spread_p99']:.0f} ms |",
        f"| updates dropped for slow clients | 0 | {result['dropped']} |",
        f"| API CPU over the run | | {result['api_cores']:.3f} cores |",
        f"| the clients' CPU over the run | | {result['clients_cores']:.3f} cores |",
        f"| API peak RSS | ≤ 250 MB | {result['api_peak_rss_mb']:.0f} MB |",
    ]
    table = "\n".join(lines)
    typer.echo(table)
    if save:
        record("fanout", "WebSocket fan-out (`make bench-fanout`)", table, result)


if __name__ == "__main__":
    app()
