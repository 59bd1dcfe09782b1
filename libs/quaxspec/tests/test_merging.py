"""Tests for quaxspec.merging: the aggregator's step under at-least-once delivery, against numpy."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from quaxspec.aggregation import FileAccumulator, RunAccumulator
from quaxspec.findings import AnalysisConfig
from quaxspec.merging import Step, apply_close, apply_partial
from quaxspec.messages import CloseFile, Partial, SkippedChunk
from quaxspec.moments import Moments
from quaxspec.spectra import FileSpectrum, RunSpectrum

RUN = "run-2024-06-01"
N_BINS = 16
FS = 2.0e6
F_LO = 10.353e9
DAQ_TIME = 1_717_200_000.0
CONFIG = AnalysisConfig(baseline_window=5, baseline_order=2)
RTOL = 1e-12


def _spectra(rng: np.random.Generator, n_slices: int, n_bins: int = N_BINS) -> NDArray[np.float64]:
    baseline = 1e-17 * (1.5 + np.sin(np.linspace(0.0, 3.0, n_bins)))
    return rng.exponential(size=(n_slices, n_bins)) * baseline


def _cuts(rng: np.random.Generator, total: int) -> list[tuple[int, int]]:
    inner = rng.choice(np.arange(1, total), size=rng.integers(0, total), replace=False)
    edges = [0, *sorted(int(e) for e in inner), total]
    return list(itertools.pairwise(edges))


def _origin(number: int, total: int, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "run_id": RUN,
        "file_number": number,
        "total_slices": total,
        "n_fft": N_BINS,
        "fs": FS,
        "f_lo": F_LO,
        "daq_time": DAQ_TIME + 4.2 * number,
    }
    fields.update(overrides)
    return fields


def _partial(data: NDArray[np.float64], number: int, start: int, stop: int, **kw: Any) -> Partial:
    fields = _origin(number, data.shape[0], n_fft=data.shape[1], **{"chunk_id": start, **kw})
    return Partial(moments=Moments.of(data[start:stop]), **fields)


def _skip(number: int, total: int, start: int, stop: int) -> SkippedChunk:
    return SkippedChunk(chunk_id=start, n_slices=stop - start, **_origin(number, total))


@dataclass
class Aggregator:
    """The aggregator agent's bookkeeping around the pure steps, with an optional table store."""

    through_store: bool = False
    files: dict[int, bytes | FileAccumulator] = field(default_factory=dict)
    run: bytes | RunAccumulator | None = None
    file_spectra: list[FileSpectrum] = field(default_factory=list)
    run_spectra: list[RunSpectrum] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    clock: float = 1_717_300_000.0
    late_files: int = 8

    def _load_file(self, number: int) -> FileAccumulator | None:
        stored = self.files.get(number)
        return FileAccumulator.from_bytes(stored) if isinstance(stored, bytes) else stored

    def _load_run(self) -> RunAccumulator | None:
        stored = self.run
        return RunAccumulator.from_bytes(stored) if isinstance(stored, bytes) else stored

    def deliver(self, message: Partial | SkippedChunk | CloseFile) -> Step:
        self.clock += 0.5
        file, run = self._load_file(message.file_number), self._load_run()
        now, late_files = self.clock, self.late_files
        if isinstance(message, CloseFile):
            step = apply_close(
                message, file=file, run=run, now=now, config=CONFIG, late_files=late_files
            )
        else:
            step = apply_partial(
                message, file=file, run=run, now=now, config=CONFIG, late_files=late_files
            )
        for number in step.forget:
            del self.files[number]
        if step.file is None:
            self.files.pop(message.file_number, None)
        else:
            self.files[message.file_number] = (
                step.file.to_bytes() if self.through_store else step.file
            )
        if step.run is not None:
            self.run = step.run.to_bytes() if self.through_store else step.run
        for spectrum in (step.file_spectrum, step.run_spectrum):
            if spectrum is not None:  # what would be sent must encode, and decode the same
                assert type(spectrum).from_bytes(spectrum.to_bytes()).to_bytes() == (
                    spectrum.to_bytes()
                )
        if step.file_spectrum is not None:
            self.file_spectra.append(step.file_spectrum)
        if step.run_spectrum is not None:
            self.run_spectra.append(step.run_spectrum)
        self.steps.append(step)
        return step

    @property
    def final_run(self) -> RunAccumulator:
        run = self._load_run()
        assert run is not None
        return run


def _assert_numpy_moments(moments: Moments, data: NDArray[np.float64]) -> None:
    n = data.shape[0]
    assert int(moments.n) == n
    np.testing.assert_allclose(moments.mean, data.mean(axis=0), rtol=RTOL, atol=0)
    np.testing.assert_allclose(moments.m2, data.var(axis=0) * n, rtol=RTOL, atol=0)


def _assert_file_spectrum(spectrum: FileSpectrum, data: NDArray[np.float64]) -> None:
    """Mean, std and spectral kurtosis against numpy's sums over all slices at once."""
    n = data.shape[0]
    assert spectrum.count == n
    np.testing.assert_allclose(spectrum.mean, data.mean(axis=0), rtol=RTOL, atol=0)
    np.testing.assert_allclose(spectrum.std, data.std(axis=0, ddof=1), rtol=RTOL, atol=0)
    s1, s2 = data.sum(axis=0), (data**2).sum(axis=0)
    kurtosis = (n + 1) / (n - 1) * (n * s2 / s1**2 - 1)  # Nita & Gary 2010, power-sum form
    np.testing.assert_allclose(spectrum.spectral_kurtosis, kurtosis, rtol=1e-9, atol=0)
    expected_axis = F_LO + np.fft.fftshift(np.fft.fftfreq(data.shape[1], 1.0 / FS))
    np.testing.assert_array_equal(spectrum.frequency_hz, expected_axis)


# --- one file ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("through_store", [False, True])
def test_file_closes_exactly_when_all_slices_are_accounted(seed: int, through_store: bool) -> None:
    rng = np.random.default_rng(seed)
    total = int(rng.integers(2, 60))
    data = _spectra(rng, total)
    partials = [_partial(data, 3, a, b) for a, b in _cuts(rng, total)]
    agg = Aggregator(through_store=through_store)

    order = rng.permutation(len(partials))
    for index in order[:-1]:
        step = agg.deliver(partials[index])
        assert step.file is not None
        assert not step.file.finished
        assert (step.run, step.file_spectrum, step.run_spectrum) == (None, None, None)
        assert not step.duplicate
    step = agg.deliver(partials[order[-1]])

    assert step.file is None
    assert agg.files == {}
    assert not step.duplicate
    assert step.run is not None
    assert 3 in step.run.files
    _assert_numpy_moments(step.run.moments, data)
    spectrum = step.file_spectrum
    assert spectrum is not None
    assert (spectrum.run_id, spectrum.file_number) == (RUN, 3)
    assert spectrum.count == spectrum.expected_count == total
    assert spectrum.complete
    assert spectrum.duplicates == 0
    assert spectrum.daq_time == DAQ_TIME + 4.2 * 3
    assert spectrum.emitted_time == agg.clock
    _assert_file_spectrum(spectrum, data)
    run_spectrum = step.run_spectrum
    assert run_spectrum is not None
    assert (run_spectrum.files, run_spectrum.slices, run_spectrum.last_file) == (1, total, 3)
    assert (run_spectrum.incomplete_files, run_spectrum.duplicates) == (0, 0)
    np.testing.assert_allclose(run_spectrum.mean, data.mean(axis=0), rtol=RTOL, atol=0)
    np.testing.assert_allclose(
        run_spectrum.sem, data.std(axis=0, ddof=1) / np.sqrt(total), rtol=RTOL, atol=0
    )
    assert run_spectrum.config == CONFIG


def test_skipped_chunk_finishes_the_file_incomplete() -> None:
    rng = np.random.default_rng(10)
    data = _spectra(rng, 24)
    agg = Aggregator()
    assert agg.deliver(_partial(data, 2, 16, 24)).file is not None
    assert agg.deliver(_skip(2, 24, 6, 16)).file is not None
    step = agg.deliver(_partial(data, 2, 0, 6))

    assert step.file is None
    assert step.file_spectrum is not None
    assert (step.file_spectrum.count, step.file_spectrum.expected_count) == (14, 24)
    assert not step.file_spectrum.complete
    _assert_file_spectrum(step.file_spectrum, np.concatenate([data[:6], data[16:]]))
    assert step.run is not None
    assert step.run.incomplete_files == 1
    assert step.run_spectrum is not None
    assert (step.run_spectrum.slices, step.run_spectrum.incomplete_files) == (14, 1)


# --- many files, at-least-once delivery --------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("through_store", [False, True])
def test_at_least_once_delivery_equals_numpy_over_all_slices(
    seed: int, through_store: bool
) -> None:
    rng = np.random.default_rng(1000 + seed)
    numbers = [int(n) for n in rng.choice(np.arange(100, 120), size=5, replace=False)]
    data = {n: _spectra(rng, int(rng.integers(1, 40))) for n in numbers}
    partials = [
        _partial(data[n], n, a, b) for n in numbers for a, b in _cuts(rng, data[n].shape[0])
    ]
    deliveries = [p for p in partials for _ in range(int(rng.integers(1, 4)))]
    deliveries = [deliveries[i] for i in rng.permutation(len(deliveries))]
    # Make sure some redeliveries come after their file was closed and merged.
    deliveries += [partials[i] for i in rng.choice(len(partials), size=3)]
    redeliveries = len(deliveries) - len(partials)

    agg = Aggregator(through_store=through_store)
    seen: set[tuple[int, int]] = set()
    closed: set[int] = set()
    expected_file_duplicates = dict.fromkeys(numbers, 0)
    late = 0
    for message in deliveries:
        key = (message.file_number, message.chunk_id)
        step = agg.deliver(message)
        assert step.duplicate is (key in seen)
        if key in seen:
            if message.file_number in closed:
                late += 1
                assert step.file is None
                assert step.file_spectrum is None
                assert step.run_spectrum is None
            else:
                expected_file_duplicates[message.file_number] += 1
        seen.add(key)
        if step.file_spectrum is not None:
            assert step.file_spectrum.file_number == message.file_number
            assert message.file_number not in closed  # emitted exactly once
            closed.add(message.file_number)
    assert late >= 3
    assert sum(s.duplicate for s in agg.steps) == redeliveries

    run = agg.final_run
    _assert_numpy_moments(run.moments, np.concatenate([data[n] for n in numbers]))
    assert run.duplicates == redeliveries
    assert len(run.files) == len(numbers)
    assert sorted(n for n in range(200) if n in run.files) == sorted(numbers)
    assert run.incomplete_files == 0
    assert run.last_file == max(numbers)
    assert run.first_daq_time == DAQ_TIME + 4.2 * min(numbers)
    assert run.last_daq_time == DAQ_TIME + 4.2 * max(numbers)
    assert agg.files == {}

    assert sorted(s.file_number for s in agg.file_spectra) == sorted(numbers)
    for spectrum in agg.file_spectra:
        assert spectrum.complete
        assert spectrum.duplicates == expected_file_duplicates[spectrum.file_number]
        if data[spectrum.file_number].shape[0] > 1:
            _assert_file_spectrum(spectrum, data[spectrum.file_number])
    # One run spectrum per closed file, cumulative, in closing order.
    assert len(agg.run_spectra) == len(numbers)
    assert [r.files for r in agg.run_spectra] == list(range(1, len(numbers) + 1))
    assert [r.slices for r in agg.run_spectra] == list(
        np.cumsum([data[s.file_number].shape[0] for s in agg.file_spectra])
    )
    np.testing.assert_allclose(
        agg.run_spectra[-1].mean,
        np.concatenate([data[n] for n in numbers]).mean(axis=0),
        rtol=RTOL,
        atol=0,
    )


# --- close requests ----------------------------------------------------------------------------


@pytest.mark.parametrize("through_store", [False, True])
def test_a_closed_file_takes_its_late_chunks_as_new_revisions(through_store: bool) -> None:
    rng = np.random.default_rng(11)
    complete, stalled = _spectra(rng, 10), _spectra(rng, 20)
    agg = Aggregator(through_store=through_store)
    for a, b in ((0, 4), (4, 10)):
        agg.deliver(_partial(complete, 1, a, b))
    for a, b in ((0, 5), (12, 20)):
        agg.deliver(_partial(stalled, 2, a, b))
    agg.deliver(_partial(stalled, 2, 0, 5))  # a redelivery before the close

    step = agg.deliver(CloseFile(run_id=RUN, file_number=2))

    assert step.file is not None
    assert step.file.closed  # kept for its late chunks
    assert not step.duplicate
    spectrum = step.file_spectrum
    assert spectrum is not None
    assert (spectrum.file_number, spectrum.count, spectrum.expected_count) == (2, 13, 20)
    assert (spectrum.complete, spectrum.revision, spectrum.duplicates) == (False, 0, 1)
    merged = np.concatenate([stalled[:5], stalled[12:]])
    _assert_file_spectrum(spectrum, merged)
    run = agg.final_run
    assert (len(run.files), run.incomplete_files, run.duplicates, run.awaiting) == (2, 1, 1, [2])
    _assert_numpy_moments(run.moments, np.concatenate([complete, merged]))
    assert step.run_spectrum is not None
    assert (step.run_spectrum.files, step.run_spectrum.incomplete_files) == (2, 1)
    assert (step.run_spectrum.slices, step.run_spectrum.awaiting_files) == (23, 1)
    # A second close of the same file does nothing.
    again = agg.deliver(CloseFile(run_id=RUN, file_number=2))
    assert (again.run, again.file_spectrum, again.run_spectrum) == (None, None, None)

    # The late chunks come: each one merges once and emits a new revision.
    first_late = agg.deliver(_partial(stalled, 2, 5, 9))
    assert (first_late.late, first_late.duplicate) == (True, False)
    assert first_late.file_spectrum is not None
    assert first_late.run_spectrum is not None
    assert (first_late.file_spectrum.revision, first_late.file_spectrum.count) == (1, 17)
    assert first_late.file_spectrum.late_chunks == 1
    repeat = agg.deliver(_partial(stalled, 2, 5, 9))
    assert (repeat.duplicate, repeat.file_spectrum, repeat.run_spectrum) == (True, None, None)
    last = agg.deliver(_partial(stalled, 2, 9, 12))
    assert last.file is None  # complete: nothing is kept of it any more
    assert 2 not in agg.files
    revised = last.file_spectrum
    assert revised is not None
    assert (revised.revision, revised.complete, revised.late_chunks) == (2, True, 2)
    _assert_file_spectrum(revised, stalled)
    assert last.run_spectrum is not None
    assert (last.run_spectrum.incomplete_files, last.run_spectrum.late_chunks) == (0, 2)
    assert (last.run_spectrum.duplicates, last.run_spectrum.awaiting_files) == (2, 0)
    assert last.run_spectrum.slices == 30
    _assert_numpy_moments(agg.final_run.moments, np.concatenate([complete, stalled]))

    # After it is complete, any chunk of it is a plain duplicate.
    after = agg.deliver(_partial(stalled, 2, 5, 9))
    assert (after.duplicate, after.late, after.file) == (True, False, None)
    assert agg.final_run.duplicates == 3


def test_files_closed_beyond_the_bound_are_forgotten_and_their_late_chunks_counted() -> None:
    rng = np.random.default_rng(21)
    data = {n: _spectra(rng, 10) for n in (1, 2, 3)}
    agg = Aggregator(through_store=True, late_files=2)
    for n in (1, 2, 3):
        agg.deliver(_partial(data[n], n, 0, 6))
        step = agg.deliver(CloseFile(run_id=RUN, file_number=n))
    assert step.forget == (1,)
    assert sorted(agg.files) == [2, 3]
    run = agg.final_run
    assert (run.awaiting, run.forgotten_files, run.incomplete_files) == ([2, 3], 1, 3)

    lost = agg.deliver(_partial(data[1], 1, 6, 10))  # file 1 is no longer kept
    assert (lost.dropped, lost.late, lost.duplicate, lost.file_spectrum) == (
        True, False, False, None
    )  # fmt: skip
    taken = agg.deliver(_partial(data[3], 3, 6, 10))
    assert taken.late
    assert taken.file_spectrum is not None
    assert taken.file_spectrum.complete
    run = agg.final_run
    assert (run.dropped_late_chunks, run.late_chunks, run.incomplete_files) == (1, 1, 2)
    assert run.awaiting == [2]
    _assert_numpy_moments(run.moments, np.concatenate([data[1][:6], data[2][:6], data[3]]))


@pytest.mark.parametrize("seed", range(6))
def test_closes_at_random_moments_lose_nothing_that_comes_late(seed: int) -> None:
    """Files closed early by any schedule still end complete and the run equals numpy."""
    rng = np.random.default_rng(2000 + seed)
    numbers = list(range(10, 16))
    data = {n: _spectra(rng, int(rng.integers(2, 30))) for n in numbers}
    partials = [
        _partial(data[n], n, a, b) for n in numbers for a, b in _cuts(rng, data[n].shape[0])
    ]
    deliveries: list[Partial | CloseFile] = [
        p for p in partials for _ in range(int(rng.integers(1, 3)))
    ]
    deliveries += [CloseFile(run_id=RUN, file_number=n) for n in numbers for _ in range(2)]
    deliveries = [deliveries[i] for i in rng.permutation(len(deliveries))]

    agg = Aggregator(through_store=bool(seed % 2), late_files=len(numbers))
    steps = [agg.deliver(message) for message in deliveries]

    run = agg.final_run
    everything = np.concatenate([data[n] for n in numbers])
    _assert_numpy_moments(run.moments, everything)
    assert (run.incomplete_files, run.awaiting, run.dropped_late_chunks) == (0, [], 0)
    assert run.duplicates == len([d for d in deliveries if isinstance(d, Partial)]) - len(partials)
    assert run.late_chunks == sum(s.late for s in steps)
    assert agg.files == {}
    latest: dict[int, FileSpectrum] = {}
    for spectrum in agg.file_spectra:  # revisions come in order, each once
        previous = latest.get(spectrum.file_number)
        assert spectrum.revision == (0 if previous is None else previous.revision + 1)
        latest[spectrum.file_number] = spectrum
    for n, spectrum in latest.items():
        assert spectrum.complete
        if data[n].shape[0] > 1:
            _assert_file_spectrum(spectrum, data[n])
    assert agg.run_spectra[-1].slices == everything.shape[0]


def test_close_of_an_unknown_or_merged_file_does_nothing() -> None:
    request = CloseFile(run_id=RUN, file_number=9)
    nothing = apply_close(request, file=None, run=None, now=1.0, config=CONFIG, late_files=8)
    assert (nothing.file, nothing.run, nothing.file_spectrum, nothing.run_spectrum) == (
        None, None, None, None
    )  # fmt: skip
    assert not nothing.duplicate

    data = _spectra(np.random.default_rng(12), 6)
    agg = Aggregator()
    agg.deliver(_partial(data, 9, 0, 6))
    run = agg.final_run
    before = run.to_bytes()
    # Unknown file with a run, and a file that was closed already.
    closed = FileAccumulator.open(_partial(data, 9, 0, 3), now=0.0)
    closed.apply(_partial(data, 9, 0, 3), now=0.0)
    closed.closed = True
    for file in (None, closed):
        step = apply_close(request, file=file, run=run, now=2.0, config=CONFIG, late_files=8)
        assert (step.file, step.run, step.file_spectrum, step.run_spectrum) == (
            file, None, None, None
        )  # fmt: skip
    assert run.to_bytes() == before


def test_file_of_only_skipped_chunks_emits_an_empty_spectrum() -> None:
    agg = Aggregator(through_store=True)
    assert agg.deliver(_skip(4, 12, 0, 5)).file is not None
    step = agg.deliver(_skip(4, 12, 5, 12))

    assert step.file is None
    spectrum = step.file_spectrum
    assert spectrum is not None
    assert (spectrum.count, spectrum.expected_count, spectrum.complete) == (0, 12, False)
    for values in (spectrum.mean, spectrum.std, spectrum.spectral_kurtosis):
        assert values.shape == (N_BINS,)
        assert np.isnan(values).all()
    assert step.run_spectrum is None  # the run has no slices to analyse yet
    run = agg.final_run
    assert (len(run.files), run.incomplete_files, int(run.moments.n)) == (1, 1, 0)

    # The next file with data gives the run its first spectrum, counting the empty file.
    data = _spectra(np.random.default_rng(13), 8)
    step = agg.deliver(_partial(data, 5, 0, 8))
    assert step.run_spectrum is not None
    assert (step.run_spectrum.files, step.run_spectrum.incomplete_files) == (2, 1)
    assert step.run_spectrum.slices == 8
    np.testing.assert_allclose(step.run_spectrum.mean, data.mean(axis=0), rtol=RTOL, atol=0)

    # A skipped-only file in a run that has slices: the run spectrum is re-emitted.
    step = agg.deliver(_skip(6, 3, 0, 3))
    assert step.file_spectrum is not None
    assert step.file_spectrum.count == 0
    assert step.run_spectrum is not None
    assert (step.run_spectrum.files, step.run_spectrum.slices) == (3, 8)


def test_inconsistent_chunk_raises_value_error() -> None:
    data = _spectra(np.random.default_rng(14), 10)
    file = apply_partial(
        _partial(data, 1, 0, 4), file=None, run=None, now=0.0, config=CONFIG, late_files=8
    ).file
    assert file is not None
    wide = _spectra(np.random.default_rng(15), 10, 2 * N_BINS)
    with pytest.raises(ValueError, match="n_fft"):
        apply_partial(
            _partial(wide, 1, 4, 6), file=file, run=None, now=0.0, config=CONFIG, late_files=8
        )
    with pytest.raises(ValueError, match="past"):
        apply_partial(
            _partial(data, 1, 0, 8, chunk_id=5),
            file=file,
            run=None,
            now=0.0,
            config=CONFIG,
            late_files=8,
        )
    assert file.accounted == 4


@pytest.mark.parametrize("n_fft", [16, 32])
def test_run_spectrum_of_a_spectrum_narrower_than_the_line(n_fft: int) -> None:
    """With 651 Hz bins the 4.85 kHz line template spans ~39 bins: no whole line fits."""
    fs = 651.0 * n_fft
    data = _spectra(np.random.default_rng(16), 6, n_fft)
    partial = _partial(data, 1, 0, 6, fs=fs)
    step = apply_partial(partial, file=None, run=None, now=0.0, config=CONFIG, late_files=8)
    assert step.run_spectrum is not None
    assert np.isnan(step.run_spectrum.matched_sigma).all()
    assert step.run_spectrum.candidates == []
