"""The live DAQ path on the real broker: keep pace with the DAQ, resume, never merge acquisitions.

A DAQ emulator writes pairs in pieces into a folder the producer watches; everything else
runs as the real processes of the pipeline. "Nothing lost" is checked against scipy's
welch and numpy over every slice the DAQ wrote, not against the pipeline's counters.
"""

from __future__ import annotations

import datetime
import json
import re
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest
import reference
from daq_emulator import DaqEmulator
from localkafka import LocalKafka, free_port
from pipeline import Outputs, Pipeline
from scipy import stats
from ws_listener import WebSocketListener

from quaxspec.messages import RawChunk
from quaxspec.synthetic import SyntheticDaq
from quaxspec.topics import RAW

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

N_FFT = 3072
SMALL = 2**20  # 341 slices and 1024 samples left over: 11 chunks of ≤ 32 slices
REAL = 2**23  # the public QUAX files: 2730 slices, 86 chunks


def _watch(directory: Path, *extra: str) -> list[str]:
    return ["run", "--source", "watch", "--directory", str(directory), *extra]


def _wait_until(condition, *, timeout: float, what: str, pipe: Pipeline) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}\n{pipe.logs()}"
        time.sleep(0.2)


def _delivered(pipe: Pipeline) -> int:
    return sum(len(progress.files) for progress in pipe.progress().values())


def _check_runs(outputs: Outputs, contents: dict[str, list[tuple[np.ndarray, np.ndarray]]]) -> None:
    """Every file of every run equals welch of what the DAQ wrote; each run all its slices."""
    references: dict[int, np.ndarray] = {}
    for run_id, files in contents.items():
        spectra = outputs.run_files(run_id)
        assert sorted(spectra) == list(range(len(files))), (run_id, sorted(spectra))
        sums = reference.SliceSums()
        for number, (i, q) in enumerate(files):
            key = id(i)
            if key not in references:
                references[key] = reference.check_file(spectra[number], i, q, N_FFT)
            else:  # the same content again: the same numbers
                spectrum = spectra[number]
                np.testing.assert_allclose(spectrum.mean, references[key].mean(axis=0), rtol=1e-5)
                assert spectrum.complete
                assert spectrum.count == references[key].shape[0]
            sums.add(references[key])
        run = outputs.runs[run_id]
        assert (run.files, run.incomplete_files) == (len(files), 0)
        sums.check(run)


def test_a_watched_daq_at_the_real_rate_has_each_spectrum_out_within_a_second(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    # The DAQ's own rate and files: a 2²³-sample pair every 4.2 s, written in pieces. The
    # latency is what a user sees: from the pair's last byte on disk to its spectrum on
    # the WebSocket, both on this machine's wall clock.
    files = 50
    daq = DaqEmulator(tmp_path / "daq", samples=REAL, period=4.2, keep=6, variety=3, seed=1)
    pipe = Pipeline(kafka, tmp_path / "pipe")
    try:
        port = pipe.start_watched_daq(daq.directory, file_samples=REAL)
        with WebSocketListener(f"ws://127.0.0.1:{port}/ws/v1/spectra") as listener:
            daq.start(files)
            daq.join()
            listener.wait_for(files, timeout=60)
        outputs = pipe.collect(files=files, timeout=120)
    finally:
        pipe.close()

    arrivals = listener.files()
    latencies = np.array([arrivals[n].time - daq.completed[n] for n in range(files)])
    fit = stats.linregress(np.arange(files), latencies)
    print(
        f"latency from last byte to WebSocket over {files} pairs: median "
        f"{np.median(latencies):.3f} s, p99 {np.percentile(latencies, 99):.3f} s, max "
        f"{latencies.max():.3f} s; slope {fit.slope * 1e3:.2f} ± {fit.stderr * 1e3:.2f} ms/file"
    )
    assert all(arrival.complete for arrival in arrivals.values())
    assert np.percentile(latencies, 99) <= 1.0, latencies
    assert latencies.min() > 0  # the clock is the DAQ's: nothing arrives before it is written
    # No backlog: latency does not grow with the file number (a growth of more than three
    # standard errors of the slope would say it does).
    assert fit.slope < 3 * fit.stderr, (fit.slope, fit.stderr, latencies)
    [run_id] = {run for run, _ in outputs.files}
    _check_runs(outputs, {run_id: [daq.content(n) for n in range(files)]})


@pytest.mark.parametrize("source", ["watch", "directory"])
def test_a_producer_killed_mid_file_resends_only_that_file_and_the_run_stays_exact(
    kafka: LocalKafka, tmp_path: Path, source: str
) -> None:
    files = 8
    daq = DaqEmulator(tmp_path / "daq", samples=SMALL, period=1.5, variety=3, seed=11)
    pipe = Pipeline(kafka, tmp_path / "pipe")
    options = ["run", "--source", source, "--directory", str(daq.directory)]
    if source == "directory":
        for number in range(files):
            daq.write(number)
        options += ["--seconds-per-pair", "1.5"]  # a paced replay: 0.14 s per chunk
    try:
        pipe.start_aggregator()
        pipe.start_worker("fft-worker-1")
        pipe.start_worker("fft-worker-2")
        pipe.start("producer", "quax-producer", *options)
        if source == "watch":
            daq.start(files)
        _wait_until(lambda: _delivered(pipe) >= 3, timeout=90, what="3 files", pipe=pipe)
        if source == "watch":  # half-way through the DAQ's writing of the next pair
            _wait_until(
                lambda: daq.writing is not None and daq.writing[1] >= 0.5,
                timeout=30,
                what="the DAQ is half-way through a pair",
                pipe=pipe,
            )
        else:
            time.sleep(0.6)  # half-way through the schedule's slot of the next pair
        pipe.kill("producer")
        before = Counter(
            (chunk.file_number, chunk.first_slice)
            for chunk in (RawChunk.from_bytes(v) for _, v in pipe.topic_records(RAW))
        )
        restarted = time.time()
        pipe.start("producer-restarted", "quax-producer", *options)
        daq.join()
        outputs = pipe.collect(files=files, timeout=180)
        runs = pipe.progress()
    finally:
        pipe.close()

    total = SMALL // N_FFT
    chunks_per_file = -(-total // 32)
    sent = Counter(file for file, _ in before)
    in_flight = [n for n, count in sent.items() if count < chunks_per_file]
    assert len(in_flight) == 1, f"the kill did not land in a file: {sorted(sent.items())}"
    [run] = runs.values()  # resumed: the same run, no other
    assert run.files.ranges == [(0, files)]
    after = Counter(
        (chunk.file_number, chunk.first_slice)
        for chunk in (RawChunk.from_bytes(v) for _, v in pipe.topic_records(RAW))
    )
    again = {file for (file, _), count in after.items() if count > 1}
    assert again <= set(in_flight), (again, in_flight)  # no file sent again but that one
    assert set(after) == {(n, s) for n in range(files) for s in range(0, total, 32)}
    _check_runs(outputs, {run.run_id: [daq.content(n) for n in range(files)]})
    new = [s.emitted_time for s in outputs.files.values() if s.emitted_time > restarted]
    assert min(new) - restarted <= 10.0, min(new) - restarted


def test_a_second_acquisition_in_the_same_folder_gets_a_run_of_its_own(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    # The DAQ is restarted and numbers its files from 0 again, over the first acquisition's.
    folder = tmp_path / "daq"
    first = DaqEmulator(folder, samples=SMALL, period=1.0, variety=4, seed=20)
    second = DaqEmulator(folder, samples=SMALL, period=1.0, variety=4, seed=30)
    pipe = Pipeline(kafka, tmp_path / "pipe")
    try:
        pipe.start_aggregator()
        pipe.start_worker()
        pipe.start("producer", "quax-producer", *_watch(folder))
        first.start(4)
        first.join()
        _wait_until(lambda: _delivered(pipe) >= 4, timeout=60, what="4 files", pipe=pipe)
        second.start(4)
        second.join()
        outputs = pipe.collect(files=8, timeout=120)
        runs = sorted(pipe.progress().values(), key=lambda p: p.started_time)
        log = pipe.log("producer")
    finally:
        pipe.close()

    assert len(runs) == 2, [p.run_id for p in runs]
    assert [p.files.ranges for p in runs] == [[(0, 4)], [(0, 4)]]
    assert runs[0].finished  # the first acquisition's run was ended by the second
    assert "A new acquisition has begun." in log
    _check_runs(
        outputs,
        {
            runs[0].run_id: [first.content(n) for n in range(4)],
            runs[1].run_id: [second.content(n) for n in range(4)],
        },
    )


def test_a_named_run_refuses_another_configuration_and_another_acquisition(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    folder = tmp_path / "daq"
    first = DaqEmulator(folder, samples=SMALL, variety=3, seed=40)
    for number in range(3):
        first.write(number)
    pipe = Pipeline(kafka, tmp_path / "pipe")
    replay = ["--source", "directory", "--directory", str(folder), "--run-id", "fixed"]
    try:
        pipe.start_aggregator()
        pipe.start_worker()
        pipe.produce("replay", *replay, "--as-fast-as-possible")
        before = pipe.collect({"fixed": 3})
        other_n_fft = pipe.start("other-n-fft", "quax-producer", "run", *replay, "--n-fft", "2048")
        assert other_n_fft.wait(timeout=60) == 2, pipe.log("other-n-fft")
        # The DAQ starts again in the same folder, the run id still set: refused too.
        second = DaqEmulator(folder, samples=SMALL, period=1.0, variety=3, seed=50)
        watcher = pipe.start("watch", "quax-producer", *_watch(folder, "--run-id", "fixed"))
        second.start(1)
        second.join()
        assert watcher.wait(timeout=60) == 2, pipe.log("watch")
        time.sleep(3)  # anything sent would be aggregated by now
        after = pipe.collect({"fixed": 3})
        [run] = pipe.progress().values()
    finally:
        pipe.close()

    refusal = pipe.log("other-n-fft")
    assert "run fixed was started with n_fft 3072" in refusal
    assert "this producer has n_fft 2048" in refusal
    assert "another acquisition" in pipe.log("watch") or "new acquisition" in pipe.log("watch")
    assert run.files.ranges == [(0, 3)]
    for outputs in (before, after):
        assert (outputs.runs["fixed"].files, outputs.runs["fixed"].slices) == (
            3,
            3 * (SMALL // N_FFT),
        )
    _check_runs(after, {"fixed": [first.content(n) for n in range(3)]})


def _metric(port: int, name: str) -> float | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.TransportError:
        return None
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return None if found is None else float(found[1])


def test_a_broker_away_for_three_minutes_is_waited_out_and_the_run_completes_exact(
    tmp_path: Path,
) -> None:
    # A broker of its own: this test stops it. The aggregator keeps its default file
    # timeout (60 s), shorter than the outage.
    broker = LocalKafka.fresh(tmp_path / "kafka")
    broker.run("start")
    files, samples = 30, N_FFT * 300
    pipe = Pipeline(broker, tmp_path / "pipe")
    port = free_port()
    try:
        pipe.start_aggregator()
        pipe.start_worker("fft-worker-1")
        pipe.start_worker("fft-worker-2")
        producer = pipe.start(
            "producer", "quax-producer", "run", "--source", "synthetic", "--run-id", "outage",
            "--seed", "7", "--files", str(files), "--samples-per-file", str(samples),
            "--seconds-per-pair", "1", "--metrics-port", str(port),
        )  # fmt: skip
        _wait_until(lambda: _delivered(pipe) >= 5, timeout=60, what="5 files", pipe=pipe)
        broker.run("stop")
        stopped = time.monotonic()
        waiting: list[tuple[float, float, float | None]] = []  # since the stop, wall time, value
        while time.monotonic() - stopped < 180:
            since = time.monotonic() - stopped
            waiting.append((since, time.time(), _metric(port, "quax_producer_kafka_connected")))
            time.sleep(5)
        assert producer.poll() is None, pipe.log("producer")  # still there
        broker.run("start")
        assert producer.wait(timeout=300) == 0, pipe.log("producer")
        outputs = pipe.collect({"outage": files}, timeout=300)
    finally:
        pipe.close()
        broker.run("stop")

    log = (pipe.root / "producer.log").read_text()
    assert "Kafka did not acknowledge a delivery" in log
    assert "Kafka is unavailable; waiting for it." in log
    assert log.count("\n") < 1000, "the Kafka client's retries are thinned out"
    # The gauge says so from the moment the producer gave up on a delivery (its warning),
    # all along the outage; that moment comes after a delivery timeout (15 s) or two, and
    # most of the outage must be seen in that state, so the check cannot pass empty.
    gave_up = min(
        datetime.datetime.fromisoformat(record["timestamp"]).timestamp()
        for record in map(json.loads, log.splitlines())
        if record.get("event", "").startswith("Kafka did not acknowledge a delivery")
    )
    after = [(since, value) for since, wall, value in waiting if wall > gave_up]
    assert len(after) >= len(waiting) // 2, (gave_up, waiting)
    assert all(value == 0.0 for _, value in after), waiting
    daq = SyntheticDaq(seed=7, n_samples=samples)
    _check_runs(outputs, {"outage": [daq.samples(n) for n in range(files)]})
