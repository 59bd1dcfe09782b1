"""The producer's Kafka client, chosen by measurement: aiokafka against confluent-kafka.

Both clients send the same raw chunks (RawChunk records of the real size: 32 slices of
3072 complex samples, 786 KB of samples) to the raw topic (4 partitions, round robin as the
producer spreads them) of a fresh local broker, as the producer sends them: acks=all,
idempotent, 5 ms linger. Each client runs in a process of its own, as fast as the broker
acknowledges, with a bounded number of chunks in flight; after a warm-up, for a fixed time,
the acknowledged bytes and the CPU time of the client's process (every thread: librdkafka's
are its own) and of the broker are measured. Rounds alternate the clients.

Records its table in docs/benchmarks.md and the raw figures in bench/results/clients.json.
"""

from __future__ import annotations

import asyncio
import collections
import json
import resource
import statistics
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

from localkafka import LocalKafka  # noqa: E402
from recording import machine, process_cpu, record  # noqa: E402

from quaxspec.messages import RawChunk  # noqa: E402
from quaxspec.topics import RAW  # noqa: E402

CLIENTS = ("aiokafka", "confluent-kafka")
SLICES, N_FFT = 32, 3072
#: Chunks in flight at most (~50 MB): enough to keep every partition's pipe full.
IN_FLIGHT = 64
LINGER_MS = 5
REAL_TIME_MB_S = 16.0

app = typer.Typer(add_completion=False)


def payload() -> bytes:
    rng = np.random.default_rng(1)
    i, q = (rng.standard_normal((SLICES, N_FFT), dtype=np.float32) for _ in range(2))
    chunk = RawChunk(run_id="bench", file_number=0, first_slice=0, total_slices=SLICES,
                     n_fft=N_FFT, fs=2e6, f_lo=0.0, daq_time=0.0, i=i, q=q)  # fmt: skip
    return chunk.to_bytes()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Window:
    """The measured part of a run: after the warm-up, for ``seconds``."""

    def __init__(self, warmup: float, seconds: float) -> None:
        self.start = time.monotonic() + warmup
        self.end = self.start + seconds
        self.bytes = 0
        self.cpu_start: float | None = None
        self.cpu_end: float | None = None

    def acknowledged(self, size: int) -> None:
        now = time.monotonic()
        if now >= self.start and self.cpu_start is None:
            self.cpu_start = cpu_seconds()
            print("measuring", flush=True)  # the parent starts reading the broker's CPU
        if self.start <= now < self.end:
            self.bytes += size

    @property
    def over(self) -> bool:
        return time.monotonic() >= self.end

    def result(self) -> dict[str, float]:
        assert self.cpu_start is not None
        assert self.cpu_end is not None
        seconds = self.end - self.start
        return {
            "mb_per_s": self.bytes / 1e6 / seconds,
            "client_cpu": (self.cpu_end - self.cpu_start) / seconds,
        }


async def send_aiokafka(bootstrap: str, topic: str, window: Window, partitions: int) -> None:
    from aiokafka import AIOKafkaProducer

    value = payload()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                max_request_size=2**21, linger_ms=LINGER_MS)  # fmt: skip
    await producer.start()
    pending: collections.deque[asyncio.Future[Any]] = collections.deque()
    try:
        sent = 0
        while not window.over:
            if len(pending) >= IN_FLIGHT:
                await pending.popleft()
                window.acknowledged(len(value))
            pending.append(
                await producer.send(topic, value, key=b"bench", partition=sent % partitions)
            )
            sent += 1
        window.cpu_end = cpu_seconds()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def send_confluent(bootstrap: str, topic: str, window: Window, partitions: int) -> None:
    from confluent_kafka import Producer

    value = payload()
    producer = Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
        "linger.ms": LINGER_MS, "message.max.bytes": 2**21,
        "queue.buffering.max.messages": IN_FLIGHT,
    })  # fmt: skip
    size = len(value)

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            raise RuntimeError(f"delivery failed: {error}")
        window.acknowledged(size)

    sent = 0
    while not window.over:
        try:
            producer.produce(topic, value, key=b"bench", partition=sent % partitions,
                             on_delivery=delivered)  # fmt: skip
            sent += 1
        except BufferError:  # IN_FLIGHT chunks wait for their acknowledgement
            producer.poll(0.05)
        producer.poll(0)
    window.cpu_end = cpu_seconds()
    producer.flush(30)


@app.command(hidden=True)
def send(
    client: str, bootstrap: str, topic: str, warmup: float, seconds: float, partitions: int = 4
) -> None:
    """One client's run (in a process of its own): prints its figures as JSON."""
    window = Window(warmup, seconds)
    if client == "aiokafka":
        asyncio.run(send_aiokafka(bootstrap, topic, window, partitions))
    else:
        send_confluent(bootstrap, topic, window, partitions)
    print(json.dumps(window.result()), flush=True)


async def _topic(bootstrap: str, name: str, *, create: bool) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if create:
            config = {"max.message.bytes": str(2**21), **RAW.config}
            await admin.create_topics([NewTopic(name, 4, 1, topic_configs=config)])
        else:
            await admin.delete_topics([name])
    finally:
        await admin.close()


def measure(
    kafka: LocalKafka, client: str, warmup: float, seconds: float, round_: int
) -> dict[str, float]:
    # A topic per round, deleted after it: a round writes gigabytes, faster than retention
    # would remove them.
    topic = f"bench.{round_}.{client}.{RAW.name}"
    asyncio.run(_topic(kafka.bootstrap, topic, create=True))
    try:
        return _measure(kafka, client, topic, warmup, seconds)
    finally:
        asyncio.run(_topic(kafka.bootstrap, topic, create=False))


def _measure(
    kafka: LocalKafka, client: str, topic: str, warmup: float, seconds: float
) -> dict[str, float]:
    child = subprocess.Popen(
        [sys.executable, __file__, "send", client, kafka.bootstrap, topic, str(warmup),
         str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "measuring", f"{client} did not start"
        broker_start, started = process_cpu(kafka.pid), time.monotonic()
        result: dict[str, float] = json.loads(child.stdout.readline())
        broker_seconds = time.monotonic() - started
        result["broker_cpu"] = (process_cpu(kafka.pid) - broker_start) / broker_seconds
        assert child.wait(timeout=120) == 0
        return result
    finally:
        child.kill()


def table(results: dict[str, list[dict[str, float]]], seconds: float, rounds: int) -> str:
    lines = [
        machine(),
        "",
        f"Raw chunks of 786 KB to a 4-partition topic, acks=all, idempotent, {LINGER_MS} ms "
        f"linger, at most {IN_FLIGHT} in flight; {rounds} alternating rounds of {seconds:.0f} s "
        "per client after a warm-up, the median shown. CPU in cores (1.0 = one core busy).",
        "",
        "| client | MB/s acknowledged | × real time | client CPU | broker CPU "
        "| client CPU s per GB | client + broker CPU s per GB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for client, runs in results.items():
        mb = statistics.median(r["mb_per_s"] for r in runs)
        client_cpu = statistics.median(r["client_cpu"] for r in runs)
        broker_cpu = statistics.median(r["broker_cpu"] for r in runs)
        lines.append(
            f"| {client} | {mb:.0f} | {mb / REAL_TIME_MB_S:.1f} | {client_cpu:.2f} "
            f"| {broker_cpu:.2f} | {client_cpu / mb * 1000:.1f} "
            f"| {(client_cpu + broker_cpu) / mb * 1000:.1f} |"
        )
    return "\n".join(lines)


@app.command()
def run(
    seconds: Annotated[float, typer.Option(help="Measured seconds per round.")] = 30.0,
    warmup: Annotated[float, typer.Option(help="Seconds sent before measuring.")] = 5.0,
    rounds: Annotated[int, typer.Option(help="Rounds per client (alternating).")] = 3,
    save: Annotated[bool, typer.Option(help="Record in docs/benchmarks.md.")] = True,
) -> None:
    """Both clients on one fresh broker, alternating, and the table."""
    results: dict[str, list[dict[str, float]]] = {client: [] for client in CLIENTS}
    with tempfile.TemporaryDirectory(prefix="quax-bench-clients-") as folder:
        kafka = LocalKafka.fresh(Path(folder) / "kafka")
        kafka.run("start")
        try:
            for round_ in range(rounds):
                for client in CLIENTS:
                    figures = measure(kafka, client, warmup, seconds, round_)
                    print(f"round {round_ + 1} {client}: {figures}", flush=True)
                    results[client].append(figures)
        finally:
            kafka.run("stop")
    text = table(results, seconds, rounds)
    print(text)
    if save:
        record("clients", "The producer's Kafka client (`make bench-clients`)", text, results)


if __name__ == "__main__":
    app()
