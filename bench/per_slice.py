"""The previous architecture's essence beside ours and the floor, over the same files on one broker.

The previous implementation (Kafka + Spark) sent one slice per Kafka message (3072 I and
3072 Q samples, 24 KB) and ran one FFT per slice. Reduced to its essence, it is two small
processes here, on the same broker and the same client library (aiokafka) as ours:
- ``slices-producer`` reads each pair and sends each slice as its own record, keyed by file
  and slice number, with the client's default settings (as the previous producer did);
- ``slices-consumer`` unpacks each record, runs one single-precision FFT per slice (numpy)
  and adds its power to float64 sums per file; when a file's last slice is in, it sends the
  file's mean and variance to a result topic.
Spark's own overhead (JVM executors, Arrow hand-offs, micro-batch scheduling) is left out:
what remains is the cost of the data layout alone, so this is a lower bound of that design.

Three rows over the same N pairs, each as fast as it goes on this machine:
- the floor: one process memory-maps the files and runs ``SpectrumKernel`` over them;
- quax-stream: producer, one FFT worker and the aggregator;
- per slice: the producer and one consumer above.
For each: MB/s of samples, and CPU seconds per GB of every process (the broker's included),
with the ratios to the floor. Each architecture's spectrum of the first file is checked
against scipy's welch before its figures are kept.

Records its table in docs/benchmarks.md and the raw figures in bench/results/per_slice.json.
"""

from __future__ import annotations

import asyncio
import json
import os
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

import reference  # noqa: E402
from localkafka import LocalKafka  # noqa: E402
from pipeline import Pipeline  # noqa: E402
from recording import machine, process_cpu, record  # noqa: E402
from sustained import PAIR_MB, REAL_TIME_MB_S, daq_folder  # noqa: E402

from quaxspec.daq import (  # noqa: E402
    DEFAULT_FS,
    DEFAULT_N_FFT,
    DEFAULT_N_SAMPLES,
    pair_paths,
    read_pair,
    scan_directory,
)
from quaxspec.moments import Moments  # noqa: E402
from quaxspec.psd import psd_scale  # noqa: E402
from quaxspec.spectrum import DEFAULT_BATCH, SpectrumKernel  # noqa: E402

SLICES, RESULTS = "per-slice-raw", "per-slice-results"
KEYS = ("broker", "producer", "aggregator")

app = typer.Typer(add_completion=False)


def _own_cpu() -> float:
    return process_cpu(os.getpid())


# ---------------------------------------------------------------- the per-slice architecture


async def _produce_slices(bootstrap: str, daq: Path, files: int, n_fft: int) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)  # the client's defaults
    await producer.start()
    try:
        for number in range(files):
            i_path, q_path = pair_paths(daq, number)
            i, q = np.fromfile(i_path, np.float32), np.fromfile(q_path, np.float32)
            slices = i.size // n_fft
            sent = []
            for s in range(slices):
                lo, hi = s * n_fft, (s + 1) * n_fft
                key = f"{number}:{s}/{slices}".encode()
                sent.append(
                    await producer.send(SLICES, i[lo:hi].tobytes() + q[lo:hi].tobytes(), key=key)
                )
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _consume_slices(bootstrap: str, files: int, n_fft: int, first: Path) -> float:
    """Returns this process's CPU seconds when it was ready."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await consumer.start()
    await producer.start()
    consumer.assign([TopicPartition(SLICES, 0)])
    await consumer.seek_to_beginning()
    scale = psd_scale(n_fft, DEFAULT_FS)
    sums: dict[int, tuple[list[int], np.ndarray, np.ndarray]] = {}
    done = 0
    z = np.empty(n_fft, np.complex64)
    ready = _own_cpu()  # its start-up is not counted: the workers' is not either
    print("ready", flush=True)
    try:
        while done < files:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for message in records:
                    assert message.key is not None
                    assert message.value is not None
                    number_text, where = message.key.decode().split(":")
                    number, slices = int(number_text), int(where.split("/")[1])
                    samples = np.frombuffer(message.value, np.float32)
                    z.real, z.imag = samples[:n_fft], samples[n_fft:]
                    spectrum = np.fft.fft(z)  # one FFT per slice
                    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float64) * scale
                    if number not in sums:
                        sums[number] = ([0], np.zeros(n_fft), np.zeros(n_fft))
                    count, total, squares = sums[number]
                    count[0] += 1
                    total += power
                    squares += power * power
                    if count[0] == slices:
                        mean = np.fft.fftshift(total / slices)
                        var = np.fft.fftshift(squares / slices) - mean * mean
                        await producer.send(
                            RESULTS, mean.tobytes() + var.tobytes(), key=str(number).encode()
                        )
                        if number == 0:
                            np.save(first, mean)
                        del sums[number]
                        done += 1
        await producer.flush()
    finally:
        await producer.stop()
        await consumer.stop()
    return ready


@app.command("slices-producer", hidden=True)
def slices_producer(bootstrap: str, daq: Path, files: int, out: Path) -> None:
    """Send each slice of the first ``files`` pairs of ``daq`` as its own record."""
    asyncio.run(_produce_slices(bootstrap, daq, files, DEFAULT_N_FFT))
    out.write_text(json.dumps({"cpu_s": _own_cpu()}))


@app.command("slices-consumer", hidden=True)
def slices_consumer(bootstrap: str, files: int, first: Path, out: Path) -> None:
    """One FFT per record until ``files`` files are complete; file 0's mean to ``first``."""
    ready = asyncio.run(_consume_slices(bootstrap, files, DEFAULT_N_FFT, first))
    out.write_text(json.dumps({"cpu_s": _own_cpu() - ready, "end": time.monotonic()}))


@app.command("floor", hidden=True)
def floor(daq: Path, files: int, first: Path, out: Path) -> None:
    """The kernel over the first ``files`` pairs of ``daq``, memory-mapped, in this process."""
    kernel = SpectrumKernel(n_fft=DEFAULT_N_FFT, fs=DEFAULT_FS)
    slices = DEFAULT_N_SAMPLES // DEFAULT_N_FFT
    kernel.warm({DEFAULT_BATCH, slices % DEFAULT_BATCH} - {0})  # plans made before the clock
    cpu, wall = _own_cpu(), time.monotonic()
    for pair in scan_directory(daq).pairs[:files]:
        moments: Moments = kernel.record_moments(read_pair(pair))
        if pair.number == 0:
            np.save(first, moments.mean)
    out.write_text(json.dumps({"cpu_s": _own_cpu() - cpu, "seconds": time.monotonic() - wall}))


# ---------------------------------------------------------------- the three measured rows


def _welch_check(mean: np.ndarray, daq: Path, name: str) -> None:
    i_path, q_path = pair_paths(daq, 0)
    i, q = np.fromfile(i_path, np.float32), np.fromfile(q_path, np.float32)
    i, q = (
        i[: i.size // DEFAULT_N_FFT * DEFAULT_N_FFT],
        q[: q.size // DEFAULT_N_FFT * DEFAULT_N_FFT],
    )
    expected = reference.welch(i, q, DEFAULT_N_FFT)
    np.testing.assert_allclose(mean, expected, rtol=1e-5, err_msg=f"{name}: file 0 against welch")


def _row(name: str, files: int, seconds: float, cpu: dict[str, float]) -> dict[str, Any]:
    gb = files * PAIR_MB / 1e3
    return {
        "name": name,
        "files": files,
        "seconds": seconds,
        "mb_per_s": files * PAIR_MB / seconds,
        "cpu_s_per_gb": {process: value / gb for process, value in cpu.items()},
    }


def measure_floor(root: Path, daq: Path, files: int) -> dict[str, Any]:
    first, out = root / "floor-first.npy", root / "floor.json"
    script = [sys.executable, __file__, "floor", str(daq), str(files), str(first), str(out)]
    subprocess.run(script, check=True)
    _welch_check(np.load(first), daq, "floor")
    figures = json.loads(out.read_text())
    return _row("floor", files, figures["seconds"], {"kernel": figures["cpu_s"]})


def measure_ours(kafka: LocalKafka, root: Path, daq: Path, files: int) -> dict[str, Any]:
    pipe = Pipeline(kafka, root / "ours")
    try:
        pipe.start_aggregator()
        pipe.start_worker("fft-worker")
        pids = {"broker": kafka.pid, **{n: p.pid for n, p in pipe.processes.items()}}
        before = {n: process_cpu(pid) for n, pid in pids.items()}
        started = time.monotonic()
        options = ["--source", "directory", "--directory", str(daq), "--run-id", "ours",
                   "--files", str(files), "--as-fast-as-possible"]  # fmt: skip
        producer = pipe.start("producer", "quax-producer", "run", *options)
        before["producer"], pids["producer"] = 0.0, producer.pid
        outputs = pipe.collect({"ours": files}, timeout=1800)
        seconds = time.monotonic() - started
        # A finished producer is not reaped until close(): /proc still has its CPU times.
        cpu = {n: process_cpu(pid) - before[n] for n, pid in pids.items()}
    finally:
        pipe.close()
    spectra = outputs.run_files("ours")
    assert len(spectra) == files
    assert all(s.complete for s in spectra.values())
    _welch_check(spectra[0].mean, daq, "quax-stream")
    return _row("quax-stream", files, seconds, cpu)


async def _create_topics(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1) for name in (SLICES, RESULTS)])
    finally:
        await admin.close()


def measure_per_slice(kafka: LocalKafka, root: Path, daq: Path, files: int) -> dict[str, Any]:
    asyncio.run(_create_topics(kafka.bootstrap))
    first = root / "per-slice-first.npy"
    outs = {"producer": root / "slices-producer.json", "consumer": root / "slices-consumer.json"}
    consumer = subprocess.Popen(
        [sys.executable, __file__, "slices-consumer", kafka.bootstrap, str(files), str(first),
         str(outs["consumer"])],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert consumer.stdout is not None
    assert consumer.stdout.readline().strip() == "ready"
    broker_before, started = process_cpu(kafka.pid), time.monotonic()
    subprocess.run(
        [sys.executable, __file__, "slices-producer", kafka.bootstrap, str(daq), str(files),
         str(outs["producer"])],
        check=True,
    )  # fmt: skip
    assert consumer.wait(timeout=3600) == 0
    broker = process_cpu(kafka.pid) - broker_before
    figures = {name: json.loads(path.read_text()) for name, path in outs.items()}
    _welch_check(np.load(first), daq, "per slice")
    cpu = {"broker": broker, **{name: f["cpu_s"] for name, f in figures.items()}}
    return _row("per slice", files, figures["consumer"]["end"] - started, cpu)


def table(rows: list[dict[str, Any]]) -> str:
    floor_cost = sum(rows[0]["cpu_s_per_gb"].values())
    ours = next(r for r in rows if r["name"] == "quax-stream")
    lines = [
        f"Machine: {machine()}; the broker and every process on it. {rows[0]['files']} pairs of "
        f"2²³ samples ({rows[0]['files'] * PAIR_MB / 1e3:.1f} GB), each architecture as fast as "
        "it goes, one consumer of the spectra (one FFT worker; one per-slice consumer). CPU "
        "seconds per GB of samples, per process; each architecture's spectrum of file 0 "
        "equals scipy's welch (rtol 1e-5).",
        "",
        "| architecture | MB/s | × real time | broker | producer | FFT | aggregator "
        "| total CPU s per GB | × the floor's CPU | × quax-stream's CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cost = r["cpu_s_per_gb"]
        total = sum(cost.values())
        fft = cost.get("kernel", cost.get("fft-worker", cost.get("consumer", 0.0)))
        cell = {key: f"{cost[key]:.2f}" if key in cost else "–" for key in KEYS}
        lines.append(
            f"| {r['name']} | {r['mb_per_s']:.0f} | {r['mb_per_s'] / REAL_TIME_MB_S:.1f} "
            f"| {cell['broker']} | {cell['producer']} | {fft:.2f} | {cell['aggregator']} "
            f"| {total:.2f} | {total / floor_cost:.0f} "
            f"| {total / sum(ours['cpu_s_per_gb'].values()):.2f} |"
        )
    ratio = sum(ours["cpu_s_per_gb"].values()) / floor_cost
    lines += [
        "",
        "| goal | target | measured | ratio |",
        "|---|---:|---:|---:|",
        f"| pipeline CPU per GB, against the floor's | ≤ 15× | {ratio:.0f}× | {ratio / 15:.2f} |",
    ]
    return "\n".join(lines)


@app.command("run")
def main(
    files: Annotated[int, typer.Option(help="Pairs of 2²³ samples through each row.")] = 96,
    save: Annotated[bool, typer.Option(help="Record in docs/benchmarks.md.")] = True,
) -> None:
    """The floor, quax-stream and the per-slice architecture over the same files."""
    with tempfile.TemporaryDirectory(prefix="quax-bench-per-slice-") as scratch:
        root = Path(scratch)
        daq = daq_folder(root, files)
        rows = [measure_floor(root, daq, files)]
        kafka = LocalKafka.fresh(root / "kafka")
        kafka.run("start")
        try:
            kafka.create_topics()
            rows.append(measure_ours(kafka, root, daq, files))
            rows.append(measure_per_slice(kafka, root, daq, files))
        finally:
            kafka.run("stop")
    for r in rows:
        print(json.dumps(r), flush=True)
    text = table(rows)
    print(text)
    if save:
        title = "The previous architecture's essence beside ours (`make bench-per-slice`)"
        record("per_slice", title, text, {"machine": machine(), "rows": rows})


if __name__ == "__main__":
    app()
