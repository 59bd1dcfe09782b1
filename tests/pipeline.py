"""The whole pipeline as real processes on the real local broker, for end-to-end tests.

Each Pipeline has its own topic prefix and Faust app ids, so tests sharing one broker
never see each other's data or state. Services run from their console scripts, exactly
as `make demo` and the containers run them, and are stopped (or killed) like processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from localkafka import LocalKafka, free_port

from quaxspec.progress import RunProgress
from quaxspec.spectra import FileSpectrum, RunSpectrum
from quaxspec.topics import DEADLETTER, MAX_MESSAGE_BYTES, PROGRESS, RUNS, SPECTRA, TopicSpec

BIN = Path(__file__).resolve().parents[1] / ".venv" / "bin"


@dataclass
class Outputs:
    """What the pipeline emitted: the latest revision of each file (redeliveries are identical)."""

    files: dict[tuple[str, int], FileSpectrum] = field(default_factory=dict)
    file_messages: int = 0
    runs: dict[str, RunSpectrum] = field(default_factory=dict)
    deadletters: list[tuple[bytes, dict[str, bytes]]] = field(default_factory=list)

    def run_files(self, run_id: str) -> dict[int, FileSpectrum]:
        return {number: s for (run, number), s in self.files.items() if run == run_id}


class Pipeline:
    """Workers, aggregator and producers of one test, with their logs in ``root``."""

    def __init__(self, kafka: LocalKafka, root: Path, **env: str) -> None:
        self.kafka = kafka
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.prefix = f"t{uuid.uuid4().hex[:8]}."
        kafka.create_topics(self.prefix, aggregator_app_id=f"{self.prefix}aggregator")
        self.env = {
            **os.environ,
            **kafka.client_env,
            "QUAX_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
            "QUAX_KAFKA_TOPIC_PREFIX": self.prefix,
            "QUAX_KAFKA_SESSION_TIMEOUT_SECONDS": "6",
            "QUAX_FFT_WORKER_APP_ID": f"{self.prefix}fft-worker",
            "QUAX_FFT_WORKER_METRICS_PORT": "0",
            "QUAX_FFT_WORKER_DATA_DIR": str(root / "fft-worker"),
            "QUAX_AGGREGATOR_APP_ID": f"{self.prefix}aggregator",
            "QUAX_AGGREGATOR_UPSTREAM_GROUP": f"{self.prefix}fft-worker",
            "QUAX_AGGREGATOR_METRICS_PORT": "0",
            "QUAX_AGGREGATOR_DATA_DIR": str(root / "aggregator"),
            "QUAX_PRODUCER_METRICS_PORT": "0",
            "QUAX_ARCHIVER_METRICS_PORT": "0",
            "QUAX_ARCHIVER_GROUP_ID": f"{self.prefix}archiver",
            "QUAX_ARCHIVER_DIRECTORY": str(root / "archive"),
            "QUAX_PRODUCER_PROGRESS": "false",
            "QUAX_LOG_JSON_FORMAT": "true",
            **env,
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *command: str, **env: str) -> subprocess.Popen[bytes]:
        """Start a console script in the background; its output goes to ``root/name.log``."""
        log = (self.root / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [str(BIN / command[0]), *command[1:]],
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes[name] = process
        return process

    def start_worker(self, name: str = "fft-worker", **env: str) -> subprocess.Popen[bytes]:
        """Start an FFT worker and wait until it has its partitions."""
        process = self.start(name, "quax-fft-worker", "worker", **env)
        self.wait_ready(name)
        return process

    def start_aggregator(self, name: str = "aggregator", **env: str) -> subprocess.Popen[bytes]:
        """Start an aggregator and wait until its tables are recovered."""
        process = self.start(name, "quax-aggregator", "worker", **env)
        self.wait_ready(name)
        return process

    def start_archiver(self, name: str = "archiver", **env: str) -> subprocess.Popen[bytes]:
        """Start the archiver and wait until it has recovered its archive and reads."""
        path = self.root / f"{name}.log"
        earlier = path.stat().st_size if path.exists() else 0  # the log of former starts
        process = self.start(name, "quax-archiver", "run", **env)
        deadline = time.monotonic() + 60
        while b'"event": "Archiving."' not in path.read_bytes()[earlier:]:
            assert process.poll() is None, f"{name} exited:\n{self.log(name)}"
            assert time.monotonic() < deadline, f"{name} not archiving:\n{self.log(name)}"
            time.sleep(0.1)
        return process

    def start_api(self, name: str = "api", *, port: int, **env: str) -> subprocess.Popen[bytes]:
        """Start the API on 127.0.0.1:port and wait until /readyz says it is restored."""
        process = self.start(
            name, "quax-api", "serve", QUAX_API_PORT=str(port), QUAX_API_HOST="127.0.0.1", **env
        )
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"{name} exited:\n{self.log(name)}"
            assert time.monotonic() < deadline, f"{name} not ready:\n{self.log(name)}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            time.sleep(0.2)

    def start_watched_daq(self, directory: Path, *, file_samples: int) -> int:
        """Aggregator, two FFT workers, the API and a producer watching ``directory``.

        Returns the API's port once the producer watches the folder.
        """
        self.start_aggregator()
        self.start_worker("fft-worker-1")
        self.start_worker("fft-worker-2")
        port = free_port()
        self.start_api(port=port)
        self.start(
            "producer",
            "quax-producer",
            "run",
            "--source",
            "watch",
            "--directory",
            str(directory),
            QUAX_PRODUCER_WATCH_FILE_SAMPLES=str(file_samples),  # the DAQ's configuration
        )
        deadline = time.monotonic() + 60
        while "Watching the DAQ folder." not in self.log("producer"):
            assert time.monotonic() < deadline, f"the producer does not watch:\n{self.logs()}"
            time.sleep(0.2)
        return port

    def wait_ready(self, name: str, timeout: float = 90) -> None:
        """Wait for the Faust worker's "Worker ready" (partitions assigned, tables recovered)."""
        deadline = time.monotonic() + timeout
        while "Worker ready" not in self.log(name):
            process = self.processes[name]
            assert process.poll() is None, f"{name} exited:\n{self.log(name)}"
            assert time.monotonic() < deadline, f"{name} not ready:\n{self.log(name)}"
            time.sleep(0.2)

    def produce(self, name: str, *options: str, timeout: float = 300, **env: str) -> None:
        """Run a producer to its end (it must be given a finite source)."""
        process = self.start(name, "quax-producer", "run", *options, **env)
        try:
            code = process.wait(timeout=timeout)
        finally:
            self.stop(name)
        assert code == 0, f"producer {name} exited with {code}:\n{self.log(name)}"

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown, no commit, no flush."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self, name: str) -> int | None:
        """SIGTERM, as Kubernetes and Ctrl-C stop a service; SIGKILL after 30 s."""
        process = self.processes.pop(name, None)
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                return process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-20000:] if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(
            f"----- {p.stem}\n{self.log(p.stem)}" for p in sorted(self.root.glob("*.log"))
        )

    def collect(
        self,
        until: dict[str, int] | None = None,
        *,
        files: int = 0,
        timeout: float = 180,
        deadletters: int = 0,
        complete: bool = False,
    ) -> Outputs:
        """Read outputs until every run has emitted ``until[run]`` files (and its run update).

        ``files``: also until that many file spectra in all, of runs whose update counts
        every one of them (for runs whose ids the producer chose). ``complete``: also until
        the runs of ``until`` have no incomplete file (late data merged).
        """
        return asyncio.run(
            self._collect(
                until or {},
                files=files,
                timeout=timeout,
                deadletters=deadletters,
                complete=complete,
            )
        )

    async def _collect(
        self,
        until: dict[str, int],
        *,
        files: int,
        timeout: float,
        deadletters: int,
        complete: bool,
    ) -> Outputs:
        topics = [self.prefix + spec.name for spec in (SPECTRA, RUNS, DEADLETTER)]
        consumer = AIOKafkaConsumer(
            *topics,
            **self.kafka.client_options,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
            fetch_max_bytes=4 * MAX_MESSAGE_BYTES,
        )
        outputs = Outputs()
        await consumer.start()
        deadline = time.monotonic() + timeout
        try:
            while not self._done(outputs, until, files, deadletters, complete=complete):
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"timed out: {len(outputs.files)} files, runs "
                        f"{ {r: s.files for r, s in outputs.runs.items()} }, "
                        f"{len(outputs.deadletters)} dead letters\n{self.logs()}"
                    )
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        self._take(outputs, record)
        finally:
            await consumer.stop()
        return outputs

    def topic_records(self, spec: TopicSpec) -> list[tuple[bytes | None, bytes | None]]:
        """Every (key, value) of one of the pipeline's topics, from the start."""
        return [(r.key, r.value) for r in self.records(spec)]

    def records(self, spec: TopicSpec) -> list[ConsumerRecord[bytes, bytes]]:
        """Every record of one of the pipeline's topics, from the start, by partition."""
        return asyncio.run(self._records(spec))

    async def _records(self, spec: TopicSpec) -> list[ConsumerRecord[bytes, bytes]]:
        consumer = AIOKafkaConsumer(
            **self.kafka.client_options,
            enable_auto_commit=False,
            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
            fetch_max_bytes=4 * MAX_MESSAGE_BYTES,
        )
        await consumer.start()
        try:
            partitions = [
                TopicPartition(self.prefix + spec.name, p) for p in range(spec.partitions)
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            records: list[ConsumerRecord[bytes, bytes]] = []
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records += batch
            return sorted(records, key=lambda r: (r.partition, r.offset))
        finally:
            await consumer.stop()

    def progress(self) -> dict[str, RunProgress]:
        """The latest progress record of every run the producers delivered into."""
        runs: dict[str, RunProgress] = {}
        for _, value in self.topic_records(PROGRESS):
            progress = RunProgress.from_bytes(value)
            runs[progress.run_id] = progress
        return runs

    def _take(self, outputs: Outputs, record: object) -> None:
        topic, value = record.topic, record.value  # type: ignore[attr-defined]
        if topic.endswith(SPECTRA.name):
            spectrum = FileSpectrum.from_bytes(value)
            outputs.file_messages += 1
            key = (spectrum.run_id, spectrum.file_number)
            known = outputs.files.get(key)
            if known is None or spectrum.revision > known.revision:
                outputs.files[key] = spectrum
        elif topic.endswith(RUNS.name):
            run = RunSpectrum.from_bytes(value)
            known = outputs.runs.get(run.run_id)
            if known is None or run.slices >= known.slices:
                outputs.runs[run.run_id] = run
        else:
            headers = dict(record.headers)  # type: ignore[attr-defined]
            outputs.deadletters.append((value, headers))

    @staticmethod
    def _done(
        outputs: Outputs, until: dict[str, int], files: int, deadletters: int, *, complete: bool
    ) -> bool:
        for run_id, count in until.items():
            run = outputs.runs.get(run_id)
            if len(outputs.run_files(run_id)) < count or run is None or run.files < count:
                return False
            if complete and (
                run.incomplete_files
                or not all(s.complete for s in outputs.run_files(run_id).values())
            ):
                return False
        if files:
            if len(outputs.files) < files:
                return False
            for run_id in {run for run, _ in outputs.files}:
                run = outputs.runs.get(run_id)
                if run is None or run.files < len(outputs.run_files(run_id)):
                    return False
        return len(outputs.deadletters) >= deadletters


@contextmanager
def streaming(
    kafka: LocalKafka, root: Path, workers: Sequence[str] = ("fft-worker",), **env: str
) -> Iterator[Pipeline]:
    """A Pipeline with its aggregator and the FFT workers named ``workers`` running.

    Every process it started is stopped on leaving, also when a start fails.
    """
    pipe = Pipeline(kafka, root, **env)
    try:
        pipe.start_aggregator()
        for name in workers:
            pipe.start_worker(name)
        yield pipe
    finally:
        pipe.close()
