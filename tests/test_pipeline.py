"""The whole pipeline on the real local broker: exact spectra, faults, bad input, runs, watching.

References are computed here from the same samples with scipy (welch and spectrogram),
never from the pipeline's own code.
"""

from __future__ import annotations

import asyncio
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import reference
from aiokafka import AIOKafkaProducer
from localkafka import LocalKafka
from pipeline import Outputs, Pipeline, streaming

from quaxspec.daq import DaqRecord, pair_paths, write_pair
from quaxspec.messages import RawChunk
from quaxspec.spectra import FileSpectrum, RunSpectrum
from quaxspec.synthetic import AxionLine, SyntheticDaq
from quaxspec.topics import MAX_MESSAGE_BYTES, RAW

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

N_FFT = 3072
FS = 2.0e6
SAMPLES = N_FFT * 300 + 1000  # 300 slices and a remainder, in 10 chunks of ≤ 32 slices
FILES = 6
LINE_HZ = 2.0e5


def synthetic(seed: int, *, line: bool = False) -> SyntheticDaq:
    """The synthetic DAQ that `quax-producer run --source synthetic --seed …` uses."""
    return SyntheticDaq(
        seed=seed,
        n_samples=SAMPLES,
        line=AxionLine(frequency_hz=LINE_HZ, strength=1.0) if line else None,
    )


def producer_options(
    run_id: str, seed: int, *, line: bool = False, files: int = FILES
) -> list[str]:
    options = ["--source", "synthetic", "--run-id", run_id, "--seed", str(seed)]
    options += ["--files", str(files), "--samples-per-file", str(SAMPLES)]
    if line:
        options += ["--line-strength", "1.0", "--line-frequency-hz", str(LINE_HZ)]
    return options


def slice_spectra(i: np.ndarray, q: np.ndarray) -> np.ndarray:
    return reference.slice_spectra(i, q, N_FFT, FS)


def check_file(spectrum: FileSpectrum, i: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The file spectrum equals welch and the per-slice std; return the per-slice spectra."""
    per_slice = reference.check_file(spectrum, i, q, N_FFT, FS)
    assert spectrum.count == SAMPLES // N_FFT
    return per_slice


def check_run(run: RunSpectrum, per_slice: list[np.ndarray]) -> None:
    """The run spectrum is the mean of every slice of the run, its sem their std/√N."""
    every = np.concatenate(per_slice)
    assert run.slices == every.shape[0]
    np.testing.assert_allclose(run.mean, every.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(run.sem, every.std(axis=0, ddof=1) / np.sqrt(len(every)), rtol=1e-4)


def check_synthetic_run(
    outputs: Outputs, run_id: str, daq: SyntheticDaq, files: int
) -> RunSpectrum:
    spectra = outputs.run_files(run_id)
    assert sorted(spectra) == list(range(files))
    per_slice = [check_file(spectra[n], *daq.samples(n)) for n in range(files)]
    run = outputs.runs[run_id]
    assert run.files == files
    assert run.incomplete_files == 0
    check_run(run, per_slice)
    return run


@pytest.fixture(scope="module")
def pipeline(kafka: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """Two FFT workers and an aggregator, shared by the tests that inject no process fault."""
    with streaming(
        kafka,
        tmp_path_factory.mktemp("pipeline"),
        workers=("fft-worker-1", "fft-worker-2"),
        QUAX_AGGREGATOR_FILE_TIMEOUT_SECONDS="8",
    ) as pipe:
        yield pipe


def test_two_runs_at_once_give_exact_file_and_run_spectra_and_find_the_line(pipeline):
    daq_a, daq_b = synthetic(1, line=True), synthetic(2)
    a = pipeline.start(
        "producer-a",
        "quax-producer",
        "run",
        *producer_options("run-A", 1, line=True),
        "--seconds-per-pair",
        "0.5",
    )
    b = pipeline.start(
        "producer-b", "quax-producer", "run", *producer_options("run-B", 2), "--as-fast-as-possible"
    )
    assert a.wait(timeout=120) == 0, pipeline.log("producer-a")
    assert b.wait(timeout=120) == 0, pipeline.log("producer-b")

    outputs = pipeline.collect({"run-A": FILES, "run-B": FILES})

    run_a = check_synthetic_run(outputs, "run-A", daq_a, FILES)
    run_b = check_synthetic_run(outputs, "run-B", daq_b, FILES)
    # Duplicates may be non-zero even here: a worker joining the group triggers a rebalance,
    # and chunks processed but not yet committed are delivered again (and not counted).
    best = max(run_a.candidates, key=lambda c: c.significance)
    assert best.frequency_hz == pytest.approx(LINE_HZ, abs=1.5 * FS / N_FFT)
    assert all(abs(c.frequency_hz - LINE_HZ) > 3 * FS / N_FFT for c in run_b.candidates)
    assert outputs.deadletters == []


def test_two_producers_each_on_a_shard_of_one_run_give_its_exact_spectra(pipeline):
    """A run reprocessed by several producers (file-number shards) is the run of one."""
    daq = synthetic(3, line=True)
    shards = [
        pipeline.start(
            f"producer-shard-{k}",
            "quax-producer",
            "run",
            *producer_options("run-S", 3, line=True),
            "--shard",
            f"{k}/2",
            "--as-fast-as-possible",
        )
        for k in (1, 2)
    ]
    for k, producer in enumerate(shards, 1):
        assert producer.wait(timeout=120) == 0, pipeline.log(f"producer-shard-{k}")

    outputs = pipeline.collect({"run-S": FILES})

    run = check_synthetic_run(outputs, "run-S", daq, FILES)
    best = max(run.candidates, key=lambda c: c.significance)
    assert best.frequency_hz == pytest.approx(LINE_HZ, abs=1.5 * FS / N_FFT)
    for k in (1, 2):
        assert re.search(f'"shard": ?"{k}/2"', pipeline.log(f"producer-shard-{k}"))
    assert outputs.deadletters == []


def test_bad_input_is_reported_and_every_good_file_stays_exact(pipeline, tmp_path):
    daq = synthetic(3)
    records = [daq.record(n) for n in range(6)]
    for record in records:
        write_pair(tmp_path, record.number, record.i, record.q)
    i_path, q_path = pair_paths(tmp_path, 2)
    i_path.write_bytes(i_path.read_bytes()[:-3])  # truncated I file
    _, q_path = pair_paths(tmp_path, 3)
    q_path.write_bytes(q_path.read_bytes()[: -4 * N_FFT])  # I and Q of different lengths
    nan_i = records[4].i.copy()
    nan_i[40 * N_FFT + 7] = np.nan  # slice 40: chunk 32–63 cannot be used
    write_pair(tmp_path, 4, nan_i, records[4].q)
    asyncio.run(_send_garbage(pipeline))

    pipeline.produce(
        "producer-bad",
        "--source",
        "directory",
        "--directory",
        str(tmp_path),
        "--run-id",
        "run-bad",
        "--as-fast-as-possible",
    )
    outputs = pipeline.collect({"run-bad": 4}, deadletters=2)

    log = pipeline.log("producer-bad")
    assert "duck_i_00002.dat" in log
    assert "not a whole number of float32 samples" in log
    assert "duck_i_00003.dat" in log or "duck_q_00003.dat" in log
    reasons = sorted(headers["quax-reason"].decode() for _, headers in outputs.deadletters)
    assert any("NaN" in reason for reason in reasons)
    assert any("shorter than its header" in reason for reason in reasons)
    spectra = outputs.run_files("run-bad")
    assert sorted(spectra) == [0, 1, 4, 5]
    per_slice = [check_file(spectra[n], records[n].i, records[n].q) for n in (0, 1, 5)]
    nan_file = spectra[4]
    assert not nan_file.complete
    assert (nan_file.count, nan_file.expected_count) == (300 - 32, 300)
    good = np.r_[0:32, 64:300]
    usable = slice_spectra(records[4].i, records[4].q)[good]
    np.testing.assert_allclose(nan_file.mean, usable.mean(axis=0), rtol=1e-5)
    run = outputs.runs["run-bad"]
    assert (run.files, run.incomplete_files) == (4, 1)
    check_run(run, [*per_slice, usable])


async def _send_garbage(pipeline: Pipeline) -> None:
    await _send_raw(pipeline, [(b"?", b"not a chunk at all")])


def test_a_record_that_fails_each_agent_is_dead_lettered_once_and_the_stream_goes_on(pipeline):
    """A chunk of 2¹⁷-bin slices: its partial is too large for a message, and so is the
    spectrum of the file the worker's skip notice closes. Both land once, with the reason."""
    n_fft = 1 << 17
    samples = np.ones((1, n_fft), np.float32)
    chunk = RawChunk(
        run_id="run-poison", file_number=0, first_slice=0, total_slices=1, n_fft=n_fft,
        fs=FS, f_lo=0.0, daq_time=time.time(), i=samples, q=samples,
    )  # fmt: skip

    asyncio.run(_send_raw(pipeline, [(b"run-poison/00000", chunk.to_bytes())]))
    pipeline.produce("producer-after-poison", *producer_options("run-after-poison", 13, files=2))

    def poison_letters(outputs: Outputs) -> list[tuple[bytes, dict[str, bytes]]]:
        # Both records carry the run id right after their 56-byte header.
        return [(v, h) for v, h in outputs.deadletters if b"run-poison" in (v or b"")[:120]]

    deadline = time.monotonic() + 60
    while len(poison_letters(outputs := pipeline.collect({"run-after-poison": 2}))) < 2:
        assert time.monotonic() < deadline, pipeline.logs()
        time.sleep(1)
    time.sleep(2)  # anything more would come now
    outputs = pipeline.collect({"run-after-poison": 2})

    check_synthetic_run(outputs, "run-after-poison", synthetic(13), 2)
    poisoned = poison_letters(outputs)
    assert sorted(h["quax-service"] for _, h in poisoned) == [b"aggregator", b"fft-worker"]
    letters = {h["quax-service"].decode(): (v, h) for v, h in poisoned}
    worker_value, worker_headers = letters["fft-worker"]
    assert worker_headers["quax-reason"].startswith(b"the partial of file 0 chunk 0 of ")
    assert b"exceeds the Kafka message limit of 2097152 bytes" in worker_headers["quax-reason"]
    assert worker_headers["quax-original-bytes"] == str(len(chunk.to_bytes())).encode()
    assert worker_value == chunk.to_bytes()[:65536]
    _, aggregator_headers = letters["aggregator"]
    assert aggregator_headers["quax-reason"].startswith(b"a file spectrum of ")
    assert "run-poison" not in outputs.runs


def test_watched_directory_takes_pairs_only_once_complete(pipeline, tmp_path):
    daq = synthetic(4)
    writer = threading.Thread(
        target=_copy_slowly, args=(tmp_path, [daq.record(n) for n in range(3)])
    )
    producer = pipeline.start(
        "producer-watch",
        "quax-producer",
        "run",
        "--source",
        "watch",
        "--directory",
        str(tmp_path),
        "--run-id",
        "run-watch",
        "--files",
        "3",
        "--as-fast-as-possible",
    )
    writer.start()
    writer.join()
    assert producer.wait(timeout=120) == 0, pipeline.log("producer-watch")

    outputs = pipeline.collect({"run-watch": 3})

    check_synthetic_run(outputs, "run-watch", daq, 3)


def test_a_file_that_stops_receiving_chunks_is_closed_incomplete_and_counted(pipeline):
    daq = synthetic(6)
    records = [daq.record(n) for n in range(2)]
    asyncio.run(_send_cut(pipeline, "run-stall", records[0], _whole()))
    asyncio.run(_send_cut(pipeline, "run-stall", records[1], [c for c in _whole() if c[0] != 64]))

    started = time.monotonic()
    outputs = pipeline.collect({"run-stall": 2}, timeout=60)

    spectra = outputs.run_files("run-stall")
    check_file(spectra[0], records[0].i, records[0].q)
    stalled = spectra[1]
    assert not stalled.complete
    assert (stalled.count, stalled.expected_count) == (300 - 32, 300)
    assert time.monotonic() - started >= 8 - 1  # closed by the 8 s timeout, not before
    good = np.r_[0:64, 96:300]
    usable = slice_spectra(records[1].i, records[1].q)[good]
    np.testing.assert_allclose(stalled.mean, usable.mean(axis=0), rtol=1e-5)
    run = outputs.runs["run-stall"]
    assert (run.files, run.incomplete_files, run.slices) == (2, 1, 300 + 268)
    assert (run.awaiting_files, run.late_chunks) == (1, 0)
    assert "Closing a file that stopped receiving chunks." in pipeline.log("aggregator")

    # The missing chunk comes late: the file is emitted again, complete, and the run has it.
    asyncio.run(_send_cut(pipeline, "run-stall", records[1], [(64, 96)]))
    outputs = pipeline.collect({"run-stall": 2}, timeout=60, complete=True)
    revised = outputs.run_files("run-stall")[1]
    assert (revised.revision, revised.late_chunks) == (1, 1)
    check_file(revised, records[1].i, records[1].q)
    run = outputs.runs["run-stall"]
    assert (run.files, run.incomplete_files, run.awaiting_files) == (2, 0, 0)
    assert (run.late_chunks, run.duplicates, run.dropped_late_chunks) == (1, 0, 0)
    check_run(run, [slice_spectra(r.i, r.q) for r in records])


def test_chunks_cut_another_way_are_refused_or_counted_once_never_twice(pipeline):
    """A file sent in chunks of 32 slices up to slice 160, then whole in chunks of 24 (as a
    producer restarted with another chunk size would): chunks inside what the file has are
    repeats, the one straddling slice 160 is refused, the rest are new."""
    record = synthetic(9).record(0)
    total = SAMPLES // N_FFT
    first = _whole()[:5]  # slices 0–159
    second = _whole(size=24)
    asyncio.run(_send_cut(pipeline, "run-recut", record, first))
    time.sleep(5)  # the first cut is merged before the second comes
    asyncio.run(_send_cut(pipeline, "run-recut", record, second))
    outputs = pipeline.collect({"run-recut": 1}, timeout=60)

    (spectrum,) = outputs.run_files("run-recut").values()
    counted = np.r_[0:160, 168:total]  # [144, 168) straddles 160: refused
    assert (spectrum.count, spectrum.expected_count) == (len(counted), total)
    usable = slice_spectra(record.i, record.q)[counted]
    np.testing.assert_allclose(spectrum.mean, usable.mean(axis=0), rtol=1e-5)
    std = usable.std(axis=0, ddof=1)
    np.testing.assert_allclose(spectrum.std, std, rtol=1e-4)
    run = outputs.runs["run-recut"]
    assert (run.slices, run.duplicates) == (len(counted), 6)  # [0, 24) … [120, 144)
    refused = [
        h["quax-reason"].decode()
        for v, h in outputs.deadletters
        if b"run-recut" in (v or b"")[:120]  # the partial's run id follows its header
    ]
    # What else the file held by then depends on the order the workers' partials came in.
    (reason,) = refused
    assert reason.startswith("chunk of slices 144–167 overlaps slices file 0 already has (0–159")
    assert reason.endswith("it is neither new nor a repeat")


def _whole(total: int = SAMPLES // N_FFT, size: int = 32) -> list[tuple[int, int]]:
    """A file's slices in chunks of ``size`` (the last one shorter)."""
    return [(first, min(first + size, total)) for first in range(0, total, size)]


async def _send_cut(
    pipeline: Pipeline, run_id: str, record: DaqRecord, cut: list[tuple[int, int]]
) -> None:
    """Send one file's slices in the given chunks straight to the raw topic."""
    await _send_raw(pipeline, [(None, _chunk(run_id, record, *span).to_bytes()) for span in cut])


def _chunk(run_id: str, record: DaqRecord, first: int, stop: int) -> RawChunk:
    i, q = record.slices(N_FFT, first, stop)
    return RawChunk(
        run_id=run_id, file_number=record.number, first_slice=first,
        total_slices=SAMPLES // N_FFT, n_fft=N_FFT, fs=FS, f_lo=0.0, daq_time=time.time(),
        i=i, q=q,
    )  # fmt: skip


async def _send_raw(pipeline: Pipeline, records: list[tuple[bytes | None, bytes]]) -> None:
    """Send (key, value) records straight to the pipeline's raw topic, one by one."""
    producer = AIOKafkaProducer(
        bootstrap_servers=pipeline.kafka.bootstrap, max_request_size=MAX_MESSAGE_BYTES
    )
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(pipeline.prefix + RAW.name, value, key=key)
    finally:
        await producer.stop()


def _copy_slowly(directory: Path, records: list[DaqRecord]) -> None:
    """Write each pair in pieces, I and Q interleaved, as a DAQ streaming to disk would."""
    for record in records:
        i_path, q_path = pair_paths(directory, record.number)
        i_bytes, q_bytes = record.i.tobytes(), record.q.tobytes()
        piece = len(i_bytes) // 5 + 1
        with i_path.open("wb") as i_file, q_path.open("wb") as q_file:
            for start in range(0, len(i_bytes), piece):
                i_file.write(i_bytes[start : start + piece])
                i_file.flush()
                time.sleep(0.3)
                q_file.write(q_bytes[start : start + piece])
                q_file.flush()
                time.sleep(0.3)


@pytest.mark.parametrize("watch_upstream", [True, False], ids=["upstream-watched", "wall-clock"])
def test_workers_paused_for_twice_the_file_timeout_lose_nothing(kafka, tmp_path, watch_upstream):
    """Every FFT worker stopped (SIGSTOP) for twice the file timeout mid-run, then resumed.

    Watching the workers' lag (the default), the pause is not silence: no file closes.
    Counting wall-clock time only (no upstream group), the files being transformed close
    incomplete during the pause and their chunks come late: they merge, exactly once.
    """
    timeout = 4.0
    pipe = Pipeline(
        kafka,
        tmp_path,
        # Longer than the pause, so that the stopped workers keep their partitions.
        QUAX_KAFKA_SESSION_TIMEOUT_SECONDS="45",
        QUAX_AGGREGATOR_FILE_TIMEOUT_SECONDS=str(timeout),
        QUAX_AGGREGATOR_CLOSE_CHECK_SECONDS="0.5",
        **({} if watch_upstream else {"QUAX_AGGREGATOR_UPSTREAM_GROUP": ""}),
    )
    files = 10
    daq = synthetic(8)
    try:
        pipe.start_aggregator()
        workers = [pipe.start_worker(f"fft-worker-{n}") for n in (1, 2)]
        producer = pipe.start(
            "producer",
            "quax-producer",
            "run",
            *producer_options("run-pause", 8, files=files),
            "--seconds-per-pair",
            "2",
        )
        pipe.collect({"run-pause": 2})
        for attempt in range(3):  # until a file was mid-transform when the workers stopped
            for worker in workers:
                worker.send_signal(signal.SIGSTOP)
            time.sleep(2 * timeout + 1)
            for worker in workers:
                worker.send_signal(signal.SIGCONT)
            if watch_upstream or "Closing a file" in pipe.log("aggregator"):
                break
            time.sleep(1.5 + attempt)
        assert producer.wait(timeout=120) == 0, pipe.log("producer")
        outputs = pipe.collect({"run-pause": files}, complete=True, timeout=120)
    finally:
        pipe.close()

    try:
        run = check_synthetic_run(outputs, "run-pause", daq, files)
        assert (run.duplicates, run.dropped_late_chunks, run.awaiting_files) == (0, 0, 0)
        revised = [s for s in outputs.run_files("run-pause").values() if s.revision]
        closed_early = "Closing a file that stopped receiving chunks." in pipe.log("aggregator")
        if watch_upstream:
            assert not closed_early
            assert (run.late_chunks, revised) == (0, [])
        else:
            assert closed_early
            assert run.late_chunks > 0
            assert revised  # closed during the pause, out again complete (checked above)
            assert sum(s.late_chunks for s in revised) == run.late_chunks
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{pipe.logs()}") from None


@pytest.mark.parametrize(
    ("victim", "store"),
    [
        ("fft-worker-1", "memory://"),
        ("aggregator", "memory://"),
        ("aggregator", "rocksdb://"),
    ],
)
def test_a_killed_service_loses_no_slice_and_counts_none_twice(kafka, tmp_path, victim, store):
    # Offsets are committed rarely, so that the killed service leaves work that Kafka
    # delivers again: the aggregator must recognise every redelivered partial. With the
    # RocksDB store the restarted aggregator reopens its local tables, as a StatefulSet
    # pod with its volume does; with the memory store it rebuilds them from the changelog.
    # The file timeout is the default: while a killed worker's chunks wait for the group to
    # move them, the raw topic has lag and no file's timeout runs.
    pipe = Pipeline(
        kafka,
        tmp_path,
        QUAX_FFT_WORKER_COMMIT_INTERVAL_SECONDS="60",
        QUAX_AGGREGATOR_COMMIT_INTERVAL_SECONDS="60",
        QUAX_AGGREGATOR_STORE=store,
    )
    daq = synthetic(5, line=True)
    try:
        pipe.start_aggregator()
        pipe.start_worker("fft-worker-1")
        pipe.start_worker("fft-worker-2")
        producer = pipe.start(
            "producer",
            "quax-producer",
            "run",
            *producer_options("run-fault", 5, line=True),
            "--seconds-per-pair",
            "2",
        )
        pipe.collect({"run-fault": 2})
        pipe.kill(victim)
        if victim == "aggregator":
            pipe.start_aggregator("aggregator-restarted")
        assert producer.wait(timeout=120) == 0, pipe.log("producer")

        outputs = pipe.collect({"run-fault": FILES})
    finally:
        pipe.close()

    try:
        run = check_synthetic_run(outputs, "run-fault", daq, FILES)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{pipe.logs()}") from None
    assert run.duplicates > 0, pipe.logs()
