"""The aggregator's record handling and file closing, on dictionaries instead of Faust tables."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from quax_aggregator import handling
from quax_aggregator.handling import Outputs, PartialHandler, StalledFiles
from quax_aggregator.metrics import AggregatorMetrics, RunSeries
from quax_aggregator.tables import Tables
from quaxspec.deadletter import Source
from quaxspec.findings import AnalysisConfig
from quaxspec.messages import CloseFile, Partial
from quaxspec.moments import Moments
from quaxspec.offsets import OffsetLedger
from quaxspec.spectra import FileSpectrum, RunSpectrum

N_FFT = 64
SOURCE = Source("quax.partials", 2, 41)


class Recorder:
    """The records sent to each output topic."""

    def __init__(self) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = {
            "spectra": [], "runs": [], "partials": [], "dead": [],
        }  # fmt: skip

    def outputs(self) -> Outputs:
        def sender(topic: str):
            async def send(**record: Any) -> None:
                self.sent[topic].append(record)

            return send

        return Outputs(*(sender(t) for t in ("spectra", "runs", "partials", "dead")))


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Aggregator:
    def __init__(
        self,
        *,
        late_files: int = 8,
        max_message_bytes: int = 2 * 1024**2,
        stores: tuple[dict[bytes, bytes], ...] = (),
        release_every: int = 1,
    ) -> None:
        files, runs, offsets = stores or ({}, {}, {})
        self.tables = Tables(files, runs, offsets, release_every=release_every)
        self.ledger = OffsetLedger(self.tables.offsets)
        self.recorder = Recorder()
        self.registry = CollectorRegistry()
        metrics = AggregatorMetrics(registry=self.registry)
        self.clock = Clock()
        self.handler = PartialHandler(
            tables=self.tables,
            outputs=self.recorder.outputs(),
            metrics=metrics,
            run_series=RunSeries(metrics, idle_seconds=60),
            config=AnalysisConfig(baseline_window=11, baseline_order=2),
            late_files=late_files,
            max_message_bytes=max_message_bytes,
            clock=self.clock,
        )
        self.stalled = StalledFiles(
            tables=self.tables, outputs=self.recorder.outputs(), timeout=10.0, clock=self.clock
        )

    def take(self, value: bytes | None, key: bytes | None = b"run") -> None:
        asyncio.run(self.handler.handle(key, value, SOURCE))

    def step(self, offset: int, value: bytes) -> None:
        """What the agent does with the record at ``offset`` of SOURCE's partition."""
        partition = SOURCE.partition
        self.tables.handling(partition)
        asyncio.run(self.handler.handle(b"run", value, Source(SOURCE.topic, partition, offset)))
        self.ledger.advance(partition, offset)
        self.tables.settle(partition)

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    @property
    def files(self) -> list[FileSpectrum]:
        return [FileSpectrum.from_bytes(r["value"]) for r in self.recorder.sent["spectra"]]

    @property
    def runs(self) -> list[RunSpectrum]:
        return [RunSpectrum.from_bytes(r["value"]) for r in self.recorder.sent["runs"]]

    @property
    def dead(self) -> list[dict[str, Any]]:
        return self.recorder.sent["dead"]


def _data(seed: int, slices: int) -> np.ndarray:
    return np.random.default_rng(seed).exponential(1e-9, (slices, N_FFT))


def _partial(data: np.ndarray, number: int, start: int, stop: int) -> bytes:
    return Partial(
        run_id="run", file_number=number, chunk_id=start, total_slices=len(data), n_fft=N_FFT,
        fs=2e6, f_lo=9e9, daq_time=1_700_000_000.0 + number, moments=Moments.of(data[start:stop]),
    ).to_bytes()  # fmt: skip


def test_a_file_in_any_order_with_a_redelivery_is_emitted_once_and_its_state_dropped() -> None:
    agg = Aggregator()
    data = _data(1, 30)
    for start, stop in [(10, 20), (0, 10), (10, 20), (20, 30)]:
        agg.take(_partial(data, 4, start, stop))
    (spectrum,) = agg.files
    (run,) = agg.runs
    assert agg.recorder.sent["spectra"][0]["key"] == b"run"
    assert (spectrum.file_number, spectrum.count, spectrum.complete) == (4, 30, True)
    np.testing.assert_allclose(spectrum.mean, data.mean(axis=0), rtol=1e-12)
    assert (run.files, run.slices, run.duplicates) == (1, 30, 1)
    assert agg.tables.files == {}  # nothing kept per finished file
    assert list(agg.tables.runs) == [b"run"]
    assert agg.metric("quax_aggregator_partials_total") == 3
    assert agg.metric("quax_aggregator_duplicates_total") == 1
    assert agg.metric("quax_aggregator_files_total", complete="true") == 1


@pytest.mark.parametrize(
    ("value", "reason", "words"),
    [
        (b"garbage", "undecodable", "shorter than its header"),
        (None, "undecodable", "without a value"),
    ],
)
def test_a_record_that_does_not_decode_is_dead_lettered_once_and_the_next_is_taken(
    value: bytes | None, reason: str, words: str
) -> None:
    agg = Aggregator()
    agg.take(value, key=b"k")
    data = _data(2, 5)
    agg.take(_partial(data, 0, 0, 5))
    (letter,) = agg.dead
    headers = dict(letter["headers"])
    assert letter["key"] == b"k"
    assert words in headers["quax-reason"].decode()
    assert headers["quax-source"] == b"quax.partials/2/41"
    assert agg.metric("quax_aggregator_rejects_total", reason=reason) == 1
    assert len(agg.files) == 1  # the stream went on


def test_an_unforeseen_exception_is_dead_lettered_with_its_type_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agg = Aggregator()
    data = _data(3, 20)
    agg.take(_partial(data, 1, 0, 10))
    before = dict(agg.tables.files)

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(handling, "apply_partial", boom)
    poisoned = _partial(data, 1, 10, 20)
    agg.take(poisoned)
    monkeypatch.undo()
    (letter,) = agg.dead
    assert dict(letter["headers"])["quax-reason"] == b"RuntimeError: boom"
    assert letter["value"] == poisoned
    assert agg.metric("quax_aggregator_rejects_total", reason="error") == 1
    assert agg.tables.files == before

    agg.take(poisoned)  # the same record, replayed once the fault is gone, is merged
    assert [s.count for s in agg.files] == [20]


def test_a_spectrum_too_large_for_a_message_dead_letters_the_record_that_made_it() -> None:
    agg = Aggregator(max_message_bytes=4000)
    data = _data(4, 3)
    agg.take(_partial(data, 0, 0, 3))
    (letter,) = agg.dead
    reason = dict(letter["headers"])["quax-reason"].decode()
    assert reason.startswith("a file spectrum of ")
    assert "exceeds the Kafka message limit of 4000 bytes" in reason
    assert agg.metric("quax_aggregator_rejects_total", reason="too-large") == 1
    assert (agg.files, agg.tables.files, agg.tables.runs) == ([], {}, {})


def test_a_silent_file_is_closed_and_its_late_chunks_emit_revisions() -> None:
    agg = Aggregator()
    data = _data(5, 30)
    agg.take(_partial(data, 7, 0, 10))
    assert asyncio.run(agg.stalled.tick(upstream_idle=True)) == []  # the clock starts
    agg.clock.now += 9
    assert asyncio.run(agg.stalled.tick(upstream_idle=False)) == []  # upstream busy
    agg.clock.now += 10
    assert asyncio.run(agg.stalled.tick(upstream_idle=True)) == []  # the pause did not count
    agg.clock.now += 10.5
    (request,) = asyncio.run(agg.stalled.tick(upstream_idle=True))
    assert request == CloseFile(run_id="run", file_number=7)
    (sent,) = agg.recorder.sent["partials"]
    agg.take(sent["value"], key=sent["key"])  # the request comes back through the topic
    assert [(s.count, s.revision, s.complete) for s in agg.files] == [(10, 0, False)]
    assert asyncio.run(agg.stalled.tick(upstream_idle=True)) == []  # closed: not again

    agg.take(_partial(data, 7, 20, 30))
    agg.take(_partial(data, 7, 10, 20))
    assert [(s.count, s.revision, s.complete) for s in agg.files][1:] == [
        (20, 1, False),
        (30, 2, True),
    ]
    np.testing.assert_allclose(agg.files[-1].mean, data.mean(axis=0), rtol=1e-12)
    assert (agg.runs[-1].incomplete_files, agg.runs[-1].late_chunks) == (0, 2)
    assert agg.metric("quax_aggregator_late_chunks_total") == 2
    assert agg.metric("quax_aggregator_files_total", complete="false") == 1  # revisions not
    assert agg.tables.files == {}


def test_files_beyond_the_late_bound_are_forgotten_and_their_chunks_counted_as_dropped() -> None:
    agg = Aggregator(late_files=1)
    data = _data(6, 20)
    for number in (1, 2):
        agg.take(_partial(data, number, 0, 10))
        agg.take(CloseFile(run_id="run", file_number=number).to_bytes())
    assert list(agg.tables.files) == [b"run/2"]  # file 1 forgotten
    agg.take(_partial(data, 1, 10, 20))
    assert agg.metric("quax_aggregator_dropped_late_chunks_total") == 1
    assert agg.metric("quax_aggregator_duplicates_total") == 0
    assert agg.runs[-1].forgotten_files == 1


def test_a_restart_with_writes_held_merges_their_records_again_and_loses_nothing() -> None:
    """Kafka may have committed offsets past records whose state was only held in memory:
    the ledger, written with the state, says where to read again from."""
    stores: tuple[dict[bytes, bytes], ...] = ({}, {}, {})
    data1, data2 = _data(7, 30), _data(8, 30)
    records = [_partial(data1, 1, a, a + 10) for a in (0, 10, 20)]
    records += [_partial(data2, 2, a, a + 10) for a in (0, 10, 20)]
    first = Aggregator(stores=stores, release_every=100)
    for offset, record in enumerate(records[:5]):  # file 1 closes, file 2 is two-thirds in
        first.step(offset, record)
    assert [s.file_number for s in first.files] == [1]
    files, runs, offsets = stores
    assert (list(files), list(runs)) == ([], [b"run"])  # file 2 never reached its table

    second = Aggregator(stores=stores, release_every=100)  # the restarted process
    assert second.ledger.skipped_to(SOURCE.partition, 5) == 3  # read again from offset 3
    for offset in range(3, 6):
        second.step(offset, records[offset])
    (spectrum,) = second.files
    (run,) = second.runs
    assert (spectrum.file_number, spectrum.count, spectrum.complete) == (2, 30, True)
    np.testing.assert_allclose(spectrum.mean, data2.mean(axis=0), rtol=1e-12)
    assert (run.files, run.slices, run.duplicates) == (2, 60, 0)
    np.testing.assert_allclose(run.mean, np.vstack([data1, data2]).mean(axis=0), rtol=1e-12)
    assert (dict(files), offsets) == ({}, {str(SOURCE.partition).encode(): (6).to_bytes(8, "big")})
