"""The archiver on the real broker, behind the real pipeline: every record once, exact.

The archive is compared with what the aggregator emitted on quax.spectra (read back from
Kafka, record by record) and with numpy over every slice of the run (scipy's spectrogram
of the DAQ's samples), never with the archiver's own counters.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nbformat
import numpy as np
import pyarrow.dataset as ds
import pytest
import reference
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.partitioner import DefaultPartitioner
from localkafka import LocalKafka, free_port
from nbclient import NotebookClient
from pipeline import Pipeline, streaming
from pyarrow.fs import FileType

from quaxspec.archive import (
    ArchiveLocation,
    ArchiveReader,
    file_spectrum_of_row,
    open_archive,
    run_moments,
)
from quaxspec.spectra import RunSpectrum
from quaxspec.synthetic import SyntheticDaq
from quaxspec.topics import DEADLETTER, RUNS, SPECTRA, TopicSpec

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

N_FFT = 3072
DOCS = Path(__file__).resolve().parents[1] / "docs"
NOTEBOOK = DOCS / "archive.ipynb"
SAMPLES = N_FFT * 64  # 64 slices, two chunks
FS = 2.0e6


@pytest.fixture(scope="module")
def pipeline(kafka: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with streaming(kafka, tmp_path_factory.mktemp("archive")) as pipe:
        yield pipe


def _produce(pipeline: Pipeline, run_id: str, seed: int, files: int, seconds: str) -> None:
    pipeline.start(
        f"producer-{run_id}", "quax-producer", "run", "--source", "synthetic", "--run-id", run_id,
        "--seed", str(seed), "--files", str(files), "--samples-per-file", str(SAMPLES),
        "--seconds-per-pair", seconds,
    )  # fmt: skip


def _positions(where: Path | ArchiveLocation) -> dict[str, dict[str, int]]:
    """The positions an archive (a folder, or in the object store) says it holds."""
    location = where if isinstance(where, ArchiveLocation) else open_archive(where)
    path = location.path("_positions.json")
    if location.info(path).type != FileType.File:
        return {}
    with location.filesystem.open_input_stream(path) as stream:
        positions: dict[str, dict[str, int]] = json.loads(stream.read())
    return positions


def _wait_archived(
    pipeline: Pipeline, directory: Path | ArchiveLocation, timeout: float = 120
) -> None:
    """Until the archive's positions reach the end of quax.spectra and quax.runs."""
    ends = {spec.name: {p: 0 for p in range(spec.partitions)} for spec in (SPECTRA, RUNS)}
    for spec in (SPECTRA, RUNS):
        for record in pipeline.records(spec):
            ends[spec.name][record.partition] = record.offset + 1
    deadline = time.monotonic() + timeout
    while True:
        positions = _positions(directory)
        behind = [
            (name, p)
            for name, parts in ends.items()
            for p, end in parts.items()
            if end and positions.get(pipeline.prefix + name, {}).get(str(p), 0) < end
        ]
        if not behind:
            return
        assert time.monotonic() < deadline, f"not archived: {behind}\n{pipeline.logs()}"
        time.sleep(0.5)


def _log_size(pipeline: Pipeline, name: str) -> int:
    path = pipeline.root / f"{name}.log"
    return path.stat().st_size if path.exists() else 0


def _flushed(pipeline: Pipeline, name: str, since: int, timeout: float = 10) -> bool:
    """Whether the log written after byte ``since`` shows a flush within ``timeout``."""
    path, deadline = pipeline.root / f"{name}.log", time.monotonic() + timeout
    while b"Flushed to the archive." not in path.read_bytes()[since:]:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _kill_again_and_again(
    pipeline: Pipeline,
    name: str,
    env: dict[str, str],
    producer: subprocess.Popen[bytes],
    *,
    at_least: int,
    seed: int,
) -> int:
    """Start and SIGKILL the archiver ``name`` until the producer is done and ``at_least`` kills.

    While the run streams, each start is killed soon after its first flush, so that the kills
    cut a flushing archiver however slow the machine; afterwards, at any time. The number of
    kills is returned.
    """
    chance, kills = random.Random(seed), 0
    while producer.poll() is None or kills < at_least:
        log_size = _log_size(pipeline, name)
        pipeline.start_archiver(name, **env)
        if producer.poll() is None and _flushed(pipeline, name, log_size):
            time.sleep(chance.uniform(0.0, 0.5))
        else:
            time.sleep(chance.uniform(0.3, 2.5))
        pipeline.kill(name)
        kills += 1
    return kills


def _check_archive_equals_the_topic(
    pipeline: Pipeline, directory: Path | ArchiveLocation, run_id: str
) -> None:
    """Row for row what was emitted on quax.spectra; the run state the last quax.runs record."""
    emitted = [r for r in pipeline.records(SPECTRA) if r.key == run_id.encode()]
    rows = ArchiveReader(directory).file_rows(run_id).to_pylist()
    assert [(r["kafka_partition"], r["kafka_offset"]) for r in rows] == [
        (r.partition, r.offset) for r in emitted
    ]
    for row, record in zip(rows, emitted, strict=True):
        assert file_spectrum_of_row(row).to_bytes() == record.value
    runs = [r for r in pipeline.records(RUNS) if r.key == run_id.encode()]
    newest = max(runs, key=lambda r: RunSpectrum.from_bytes(r.value).slices)
    archived = ArchiveReader(directory).run(run_id)
    assert archived is not None
    assert archived.to_bytes() == newest.value


def _check_rebuilt_run(
    directory: Path | ArchiveLocation, run_id: str, daq: SyntheticDaq, files: int
) -> None:
    """The run rebuilt from its archived file rows: the aggregator's to 1e-12, numpy's to 1e-5."""
    reader = ArchiveReader(directory)
    moments = run_moments(reader.file_rows(run_id))
    aggregator = reader.run(run_id)
    assert aggregator is not None
    assert aggregator.slices == moments.n == files * 64
    np.testing.assert_allclose(moments.mean, aggregator.mean, rtol=1e-12, atol=0)
    np.testing.assert_allclose(moments.sem, aggregator.sem, rtol=1e-12, atol=0)
    every = np.concatenate(
        [reference.slice_spectra(*daq.samples(n), N_FFT, FS) for n in range(files)]
    )
    np.testing.assert_allclose(moments.mean, every.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(
        moments.sem, every.std(axis=0, ddof=1) / np.sqrt(len(every)), rtol=1e-4
    )


def test_the_archive_holds_every_emitted_record_and_rebuilds_the_run(pipeline):
    directory = pipeline.root / "archive"
    pipeline.start_archiver(QUAX_ARCHIVER_ROLL_SECONDS="2")
    files = 8
    _produce(pipeline, "arch-A", seed=11, files=files, seconds="0.3")
    pipeline.collect({"arch-A": files})
    _wait_archived(pipeline, directory)
    assert pipeline.stop("archiver") == 0

    _check_archive_equals_the_topic(pipeline, directory, "arch-A")
    _check_rebuilt_run(directory, "arch-A", SyntheticDaq(seed=11, n_samples=SAMPLES), files)
    dataset = ds.dataset(directory / "spectra", format="parquet", partitioning="hive")
    assert set(dataset.to_table(columns=["run"]).column("run").to_pylist()) == {"arch-A"}
    assert len(dataset.files) < files  # buffered: not one file per spectrum
    assert "Stopped; everything read is archived." in pipeline.log("archiver")


def test_an_archiver_killed_again_and_again_leaves_no_gap_and_no_duplicate(pipeline):
    directory = pipeline.root / "archive"
    files = 24
    _produce(pipeline, "arch-K", seed=12, files=files, seconds="0.4")
    producer = pipeline.processes["producer-arch-K"]
    env = {"QUAX_ARCHIVER_ROLL_SECONDS": "0.2"}  # a kill lands while reading, writing or renaming
    kills = _kill_again_and_again(pipeline, "archiver", env, producer, at_least=6, seed=13)
    assert producer.wait() == 0, pipeline.log("producer-arch-K")
    pipeline.collect({"arch-K": files})
    pipeline.start_archiver(**env)
    _wait_archived(pipeline, directory)
    pipeline.stop("archiver")

    starts = (pipeline.root / "archiver.log").read_text().split('"event": "Archiving."')
    killed = starts[-kills - 1 : -1]  # the log of each start that was killed
    assert sum("Flushed to the archive." in start for start in killed) >= 3  # mid-stream kills
    _check_archive_equals_the_topic(pipeline, directory, "arch-K")
    _check_rebuilt_run(directory, "arch-K", SyntheticDaq(seed=12, n_samples=SAMPLES), files)
    assert not list(directory.rglob(".*.tmp"))


@pytest.mark.s3
def test_an_archive_in_an_object_store_killed_again_and_again_is_exact(pipeline, s3):
    """The same with the archive in SeaweedFS's S3 gateway: no gap, no duplicate, exact."""
    s3.bucket("quax-archive")
    url = f"s3://quax-archive/{pipeline.prefix.rstrip('.')}"
    env = {
        **s3.env(),
        "QUAX_ARCHIVER_S3_URL": url,
        "QUAX_ARCHIVER_GROUP_ID": f"{pipeline.prefix}archiver-s3",
        "QUAX_ARCHIVER_ROLL_SECONDS": "0.3",
    }
    files = 16
    _produce(pipeline, "arch-S", seed=14, files=files, seconds="0.4")
    producer = pipeline.processes["producer-arch-S"]
    kills = _kill_again_and_again(pipeline, "archiver-s3", env, producer, at_least=5, seed=15)
    assert producer.wait() == 0, pipeline.log("producer-arch-S")
    pipeline.collect({"arch-S": files})
    pipeline.start_archiver("archiver-s3", **env)
    location = open_archive(url, s3.settings())
    _wait_archived(pipeline, location)
    assert pipeline.stop("archiver-s3") == 0

    starts = (pipeline.root / "archiver-s3.log").read_text().split('"event": "Archiving."')
    assert sum("Flushed to the archive." in start for start in starts[-kills - 1 : -1]) >= 2
    _check_archive_equals_the_topic(pipeline, location, "arch-S")
    _check_rebuilt_run(location, "arch-S", SyntheticDaq(seed=14, n_samples=SAMPLES), files)
    names = {info.base_name for info in location.below(location.root)}
    assert "_journal.json" not in names

    # An API whose topics are empty serves the run from the bucket as one on Kafka serves it.
    ports = {"live": free_port(), "bucket": free_port()}
    pipeline.start_api("api-live", port=ports["live"])
    empty = Pipeline(pipeline.kafka, pipeline.root / "empty")
    try:
        empty.start_api("api-s3", port=ports["bucket"], QUAX_API_ARCHIVE_S3_URL=url, **s3.env())
        served = {name: _documents(port, "arch-S") for name, port in ports.items()}
    finally:
        empty.close()
        pipeline.stop("api-live")
    assert served["bucket"]["status"] == "archived"
    assert served["live"]["status"] in ("live", "idle")
    assert {k: v for k, v in served["bucket"].items() if k != "status"} == {
        k: v for k, v in served["live"].items() if k != "status"
    }


def _documents(port: int, run_id: str) -> dict[str, object]:
    base = f"http://127.0.0.1:{port}/api/v1/runs"
    summaries = httpx.get(base, timeout=10).json()
    return {
        "status": next(s["status"] for s in summaries if s["run_id"] == run_id),
        "run": httpx.get(f"{base}/{run_id}", timeout=30).content,
        "files": httpx.get(f"{base}/{run_id}/files", timeout=10).json(),
        "waterfall": httpx.get(f"{base}/{run_id}/waterfall", timeout=10).json(),
        "file 5": httpx.get(f"{base}/{run_id}/files/5", timeout=10).content,
    }


def test_a_run_whose_records_expired_is_served_from_the_archive_as_it_was_live(pipeline):
    directory = pipeline.root / "archive"
    port = free_port()
    api_env = {"QUAX_API_ARCHIVE_DIRECTORY": str(directory)}
    pipeline.start_archiver(QUAX_ARCHIVER_ROLL_SECONDS="0.5")
    pipeline.start_api(port=port, **api_env)
    _produce(pipeline, "arch-E", seed=15, files=3, seconds="0.3")
    pipeline.collect({"arch-E": 3})
    _wait_archived(pipeline, directory)
    live = _served(port, "arch-E")
    assert live["summary"]["status"] in ("live", "idle")

    # Retention of a few ms on both topics; a later run on the same partitions rolls their
    # segments, and the broker's retention check (each minute) deletes the older ones.
    asyncio.run(_shorten_retention(pipeline))
    later = _same_partition_run("arch-E")
    _produce(pipeline, later, seed=16, files=1, seconds="0.3")
    _wait_expired(pipeline, "arch-E")
    pipeline.stop("api")
    pipeline.start_api(port=port, **api_env)  # restores from Kafka, where arch-E is gone

    archived = _served(port, "arch-E")
    assert archived["summary"]["status"] == "archived"
    assert {k: v for k, v in archived.items() if k != "summary"} == {
        k: v for k, v in live.items() if k != "summary"
    }
    pipeline.stop("archiver")


def _served(port: int, run_id: str) -> dict[str, object]:
    """What the API serves of a run: its documents as bytes, its lists as JSON."""
    base = f"http://127.0.0.1:{port}/api/v1/runs"
    summaries = httpx.get(base, timeout=10).json()
    served: dict[str, object] = {
        "summary": next(s for s in summaries if s["run_id"] == run_id),
        "run": httpx.get(f"{base}/{run_id}", timeout=10).content,
        "files": httpx.get(f"{base}/{run_id}/files", timeout=10).json(),
        "waterfall": httpx.get(f"{base}/{run_id}/waterfall", timeout=10).json(),
    }
    for number in (0, 2):
        served[f"file {number}"] = httpx.get(f"{base}/{run_id}/files/{number}", timeout=10).content
    assert [f["file_number"] for f in served["files"]] == [0, 1, 2]  # type: ignore[union-attr]
    return served


async def _shorten_retention(pipeline: Pipeline) -> None:
    admin = AIOKafkaAdminClient(**pipeline.kafka.client_options)
    await admin.start()
    try:
        config = {"cleanup.policy": "delete", "retention.ms": "1", "segment.ms": "100"}
        await admin.alter_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, pipeline.prefix + spec.name, config)
                for spec in (SPECTRA, RUNS)
            ]
        )
    finally:
        await admin.close()
    time.sleep(0.5)  # past segment.ms: the next record opens a new segment


def _same_partition_run(run_id: str) -> str:
    """A run id whose records land on the same partitions as ``run_id``'s (keyed by run)."""
    partitioner = DefaultPartitioner()
    partitions = list(range(SPECTRA.partitions))

    def partition(key: str) -> int:
        return partitioner(key.encode(), partitions, partitions)

    return next(
        c for c in (f"{run_id}-later-{k}" for k in range(100)) if partition(c) == partition(run_id)
    )


def _wait_expired(pipeline: Pipeline, run_id: str, timeout: float = 150) -> None:
    deadline = time.monotonic() + timeout
    while any(r.key == run_id.encode() for spec in (SPECTRA, RUNS) for r in pipeline.records(spec)):
        assert time.monotonic() < deadline, "the broker kept the run's records"
        time.sleep(2)


def test_the_notebook_runs_top_to_bottom_and_rebuilds_the_run_the_api_serves(
    pipeline, tmp_path, monkeypatch
):
    """docs/archive.ipynb against the archive this module's pipeline wrote (run arch-A)."""
    directory = pipeline.root / "archive"
    port = free_port()
    pipeline.start_api(name="api-notebook", port=port, QUAX_API_ARCHIVE_DIRECTORY=str(directory))
    served = httpx.get(f"http://127.0.0.1:{port}/api/v1/runs/arch-A", timeout=10)
    pipeline.stop("api-notebook")
    run = RunSpectrum.from_bytes(served.content)
    saved = tmp_path / "rebuilt.npz"
    monkeypatch.setenv("QUAX_ARCHIVE", str(directory))
    monkeypatch.setenv("QUAX_RUN", "arch-A")
    monkeypatch.setenv("QUAX_NOTEBOOK_SAVE", str(saved))
    notebook = nbformat.read(NOTEBOOK, as_version=4)

    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(DOCS)}}
    ).execute()

    rebuilt = np.load(saved)
    assert rebuilt["mean"].shape == (N_FFT,)
    np.testing.assert_allclose(rebuilt["mean"], run.mean, rtol=1e-12, atol=0)
    np.testing.assert_allclose(rebuilt["sem"], run.sem, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(rebuilt["frequency_hz"], run.frequency_hz)
    images = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert len(images) == 1  # the plot was drawn


# Last: the garbage it sends would stop the other tests' collect(), which decodes everything.
def test_a_record_that_does_not_decode_is_dead_lettered_and_the_archive_goes_on(pipeline):
    directory = pipeline.root / "archive"
    pipeline.start_archiver(QUAX_ARCHIVER_ROLL_SECONDS="0.5")
    asyncio.run(_send(pipeline, SPECTRA, b"arch-D", b'{"schema": "quax.file-spectrum/1"}'))
    _produce(pipeline, "arch-D", seed=14, files=2, seconds="0.3")
    deadline = time.monotonic() + 120
    while len(ArchiveReader(directory).files("arch-D")) < 2:
        assert time.monotonic() < deadline, pipeline.logs()
        time.sleep(0.5)
    pipeline.stop("archiver")

    letters = [
        dict(r.headers)
        for r in pipeline.records(DEADLETTER)
        if dict(r.headers).get("quax-service") == b"archiver"
    ]
    assert len(letters) == 1
    assert b"bad or missing field" in letters[0]["quax-reason"]
    assert sorted(ArchiveReader(directory).files("arch-D")) == [0, 1]


async def _send(pipeline: Pipeline, spec: TopicSpec, key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(**pipeline.kafka.client_options)
    await producer.start()
    try:
        await producer.send_and_wait(pipeline.prefix + spec.name, value, key=key)
    finally:
        await producer.stop()
