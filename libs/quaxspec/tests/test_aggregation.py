"""Tests for quaxspec.aggregation: idempotent file and run accumulators, checked against numpy."""

from __future__ import annotations

import itertools
import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from quaxspec.aggregation import FileAccumulator, RunAccumulator
from quaxspec.messages import MessageDecodeError, Partial, SkippedChunk
from quaxspec.moments import Moments

RUN = "run-2024-06-01"
N_BINS = 16
FS = 2.0e6
F_LO = 10.353e9
DAQ_TIME = 1_717_200_000.25
RTOL = 1e-12


def _bits(x: float) -> bytes:
    """A float's exact bits: distinguishes -0.0 from 0.0 and compares NaN payloads."""
    return struct.pack("<d", x)


def _spectra(rng: np.random.Generator, n_slices: int, n_bins: int = N_BINS) -> NDArray[np.float64]:
    """Exponentially distributed 'power spectra' (V²/Hz) over a non-flat baseline."""
    baseline = 1e-17 * (1.5 + np.sin(np.linspace(0.0, 3.0, n_bins)))
    return rng.exponential(size=(n_slices, n_bins)) * baseline


def _cuts(rng: np.random.Generator, total: int) -> list[tuple[int, int]]:
    """Random contiguous chunks [start, stop) covering 0 … total."""
    inner = rng.choice(np.arange(1, total), size=rng.integers(0, total), replace=False)
    edges = [0, *sorted(int(e) for e in inner), total]
    return list(itertools.pairwise(edges))


def _partial(
    data: NDArray[np.float64], start: int, stop: int, *, file_number: int = 7, **overrides: Any
) -> Partial:
    fields: dict[str, Any] = {
        "run_id": RUN,
        "file_number": file_number,
        "chunk_id": start,
        "total_slices": data.shape[0],
        "n_fft": data.shape[1],
        "fs": FS,
        "f_lo": F_LO,
        "daq_time": DAQ_TIME + 4.2 * file_number,
        "moments": Moments.of(data[start:stop]),
    }
    fields.update(overrides)
    return Partial(**fields)


def _skip(
    total: int, start: int, stop: int, *, file_number: int = 7, **overrides: Any
) -> SkippedChunk:
    fields: dict[str, Any] = {
        "run_id": RUN,
        "file_number": file_number,
        "chunk_id": start,
        "n_slices": stop - start,
        "total_slices": total,
        "n_fft": N_BINS,
        "fs": FS,
        "f_lo": F_LO,
        "daq_time": DAQ_TIME + 4.2 * file_number,
    }
    fields.update(overrides)
    return SkippedChunk(**fields)


def _assert_numpy_moments(moments: Moments, data: NDArray[np.float64]) -> None:
    """Count, mean, unbiased variance and M2 equal numpy's over all slices at once."""
    n = data.shape[0]
    assert int(moments.n) == n
    np.testing.assert_allclose(moments.mean, data.mean(axis=0), rtol=RTOL, atol=0)
    np.testing.assert_allclose(moments.m2, data.var(axis=0) * n, rtol=RTOL, atol=0)
    if n > 1:
        np.testing.assert_allclose(moments.variance, data.var(axis=0, ddof=1), rtol=RTOL, atol=0)


def _same_moments(a: Moments, b: Moments) -> bool:
    return a.n == b.n and a.mean.tobytes() == b.mean.tobytes() and a.m2.tobytes() == b.m2.tobytes()


def _snapshot(acc: FileAccumulator) -> tuple[object, ...]:
    m = acc.moments
    return (
        int(m.n), m.mean.tobytes(), m.m2.tobytes(), tuple(acc.slices.ranges), acc.skipped,
        acc.duplicates, _bits(acc.updated),
    )  # fmt: skip


def _filled_file(
    rng: np.random.Generator, total: int, *, file_number: int = 7
) -> tuple[FileAccumulator, NDArray[np.float64], list[Partial]]:
    data = _spectra(rng, total)
    partials = [_partial(data, a, b, file_number=file_number) for a, b in _cuts(rng, total)]
    acc = FileAccumulator.open(partials[0], now=1.0)
    for p in partials:
        assert acc.apply(p, now=2.0)
    return acc, data, partials


# --- FileAccumulator: statistics ---------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_file_accumulator_in_random_order_equals_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    total = int(rng.integers(1, 80))
    data = _spectra(rng, total)
    cuts = _cuts(rng, total)
    partials = [_partial(data, a, b) for a, b in cuts]
    order = rng.permutation(len(partials))

    acc = FileAccumulator.open(partials[order[0]], now=100.0)
    assert (acc.run_id, acc.file_number, acc.total_slices, acc.n_fft) == (RUN, 7, total, N_BINS)
    assert (acc.fs, acc.f_lo, acc.daq_time, acc.updated) == (FS, F_LO, DAQ_TIME + 4.2 * 7, 100.0)
    assert acc.moments.n == 0
    assert acc.slices.ranges == []
    assert not acc.finished
    accounted = 0
    for step, index in enumerate(order):
        assert not acc.finished
        assert acc.apply(partials[index], now=101.0 + step)
        accounted += cuts[index][1] - cuts[index][0]
        assert acc.accounted == accounted
        assert acc.updated == 101.0 + step
    assert acc.finished
    assert acc.complete
    assert acc.slices.ranges == [(0, total)]
    assert (acc.duplicates, acc.skipped) == (0, 0)
    _assert_numpy_moments(acc.moments, data)


@pytest.mark.parametrize("seed", range(5))
def test_redelivered_chunks_are_counted_once(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    total = int(rng.integers(2, 60))
    data = _spectra(rng, total)
    partials = [_partial(data, a, b) for a, b in _cuts(rng, total)]
    deliveries = [p for p in partials for _ in range(int(rng.integers(1, 4)))]
    deliveries = [deliveries[i] for i in rng.permutation(len(deliveries))]

    acc = FileAccumulator.open(deliveries[0], now=0.0)
    seen: set[int] = set()
    for step, message in enumerate(deliveries):
        before = _snapshot(acc)
        new = acc.apply(message, now=float(step + 1))
        assert new is (message.chunk_id not in seen)
        if not new:  # a redelivery changes nothing but the duplicate count
            after = _snapshot(acc)
            assert after[:5] == before[:5]
            assert after[6] == before[6]  # updated: only new chunks move it
        seen.add(message.chunk_id)

    assert acc.duplicates == len(deliveries) - len(partials)
    assert acc.finished
    assert acc.complete
    _assert_numpy_moments(acc.moments, data)


def test_skipped_chunk_is_accounted_but_not_merged() -> None:
    rng = np.random.default_rng(3)
    data = _spectra(rng, 30)
    skip = _skip(30, 10, 20)
    acc = FileAccumulator.open(skip, now=0.0)  # a skip may be the first message of a file
    assert acc.apply(_partial(data, 20, 30), now=1.0)
    assert acc.apply(skip, now=2.0)
    assert (acc.accounted, acc.skipped, acc.finished) == (20, 10, False)
    assert acc.apply(_partial(data, 0, 10), now=3.0)

    assert acc.finished
    assert not acc.complete
    assert acc.skipped == 10
    assert acc.slices.ranges == [(0, 30)]
    _assert_numpy_moments(acc.moments, np.concatenate([data[:10], data[20:]]))

    assert not acc.apply(skip, now=4.0)  # a redelivered skip is a duplicate too
    assert (acc.skipped, acc.duplicates, acc.updated) == (10, 1, 3.0)


def test_file_made_only_of_skips_is_finished_and_empty() -> None:
    skips = [_skip(12, 0, 5), _skip(12, 5, 12)]
    acc = FileAccumulator.open(skips[1], now=0.0)
    for s in skips:
        assert acc.apply(s, now=1.0)
    assert acc.finished
    assert not acc.complete
    assert acc.moments.n == 0
    assert acc.skipped == 12


# --- FileAccumulator: rejection of inconsistent chunks ----------------------------------------


def _bad_chunk(kind: str, data: NDArray[np.float64]) -> Partial | SkippedChunk:
    total = data.shape[0]
    wide = _spectra(np.random.default_rng(9), total, 2 * N_BINS)
    return {
        "n_fft": lambda: _partial(wide, 12, 14),
        "fs": lambda: _partial(data, 12, 14, fs=FS / 2),
        "total_slices": lambda: _partial(data, 12, 14, total_slices=total + 1),
        "other_file": lambda: _partial(data, 12, 14, file_number=8),
        "other_run": lambda: _partial(data, 12, 14, run_id="another-run"),
        "skip_n_fft": lambda: _skip(total, 12, 14, n_fft=2 * N_BINS),
        "skip_total_slices": lambda: _skip(total + 5, 12, 14),
        "past_total": lambda: _partial(data, 4, 10, chunk_id=17),  # 6 slices where 3 are left
        "skip_past_total": lambda: _skip(total, 14, 20),  # 6 slices where 3 are left
    }[kind]()


@pytest.mark.parametrize(
    "kind",
    [
        "n_fft",
        "fs",
        "total_slices",
        "other_file",
        "other_run",
        "skip_n_fft",
        "skip_total_slices",
        "past_total",
        "skip_past_total",
    ],
)
def test_inconsistent_chunk_raises_and_changes_nothing(kind: str) -> None:
    data = _spectra(np.random.default_rng(4), 20)
    acc = FileAccumulator.open(_partial(data, 0, 17), now=0.0)
    assert acc.apply(_partial(data, 0, 17), now=1.0)  # 3 slices left
    before = _snapshot(acc)
    bad = _bad_chunk(kind, data)
    with pytest.raises(ValueError, match=r"file|slices|n_fft"):
        acc.apply(bad, now=5.0)
    assert _snapshot(acc) == before


def test_a_chunk_overlapping_slices_already_counted_is_refused() -> None:
    data = _spectra(np.random.default_rng(5), 10)
    acc = FileAccumulator.open(_partial(data, 0, 6), now=0.0)
    assert acc.apply(_partial(data, 0, 6), now=0.0)
    before = _snapshot(acc)
    with pytest.raises(ValueError, match=r"slices 4–9 overlaps slices file 7 already has \(0–5\)"):
        acc.apply(_partial(data, 4, 10), now=0.0)
    assert _snapshot(acc) == before
    assert not acc.apply(_partial(data, 2, 4), now=0.0)  # inside: a repeat
    assert acc.apply(_partial(data, 6, 10), now=0.0)
    assert acc.finished


@pytest.mark.parametrize("seed", range(6))
def test_chunks_cut_two_ways_count_every_slice_at_most_once(seed: int) -> None:
    """A producer restarted with another chunk size sends the same slices cut differently."""
    rng = np.random.default_rng(300 + seed)
    total = int(rng.integers(5, 60))
    data = _spectra(rng, total)
    chunks = [_partial(data, a, b) for a, b in _cuts(rng, total) + _cuts(rng, total)]
    acc = FileAccumulator.open(chunks[0], now=0.0)
    for index in rng.permutation(len(chunks)):
        chunk = chunks[index]
        first, stop = chunk.chunk_id, chunk.chunk_id + int(chunk.moments.n)
        if acc.slices.overlaps(first, stop) and not acc.slices.covers(first, stop):
            with pytest.raises(ValueError, match="overlaps"):
                acc.apply(chunk, now=1.0)
        else:
            acc.apply(chunk, now=1.0)
    counted = [n for a, b in acc.slices.ranges for n in range(a, b)]
    assert acc.accounted == len(counted) == int(acc.moments.n)
    _assert_numpy_moments(acc.moments, data[counted])
    assert acc.finished == (counted == list(range(total)))


# --- FileAccumulator: table-store encoding -----------------------------------------------------


def _assert_same_file(decoded: FileAccumulator, expected: FileAccumulator) -> None:
    assert type(decoded) is FileAccumulator
    assert decoded.run_id == expected.run_id
    assert decoded.file_number == expected.file_number
    assert decoded.total_slices == expected.total_slices
    assert decoded.n_fft == expected.n_fft
    for name in ("fs", "f_lo", "daq_time", "updated"):
        assert _bits(getattr(decoded, name)) == _bits(getattr(expected, name)), name
    assert decoded.slices.ranges == expected.slices.ranges
    assert (decoded.late, decoded.revision, decoded.closed) == (
        expected.late,
        expected.revision,
        expected.closed,
    )
    assert decoded.skipped == expected.skipped
    assert decoded.duplicates == expected.duplicates
    assert decoded.moments.n == expected.moments.n
    assert decoded.moments.mean.dtype == np.float64
    assert decoded.moments.m2.dtype == np.float64
    assert _same_moments(decoded.moments, expected.moments)
    assert decoded.finished == expected.finished
    assert decoded.complete == expected.complete


def _file_states() -> dict[str, FileAccumulator]:
    rng = np.random.default_rng(6)
    data = _spectra(rng, 40)
    opened = FileAccumulator.open(_partial(data, 0, 5, run_id="µ-run/é 🛰"), now=-0.0)

    partly = FileAccumulator.open(_partial(data, 0, 5), now=1.5)
    partly.apply(_partial(data, 5, 9), now=1.75)
    partly.apply(_partial(data, 0, 5), now=2.0)  # duplicate
    partly.apply(_skip(40, 20, 23), now=1_717_200_123.123456)

    finished, _, partials = _filled_file(rng, 33)
    for p in partials[:2]:
        finished.apply(p, now=3.0)

    big = 2**32 - 1
    extreme_data = _spectra(rng, 3)
    extreme = FileAccumulator.open(
        _partial(
            extreme_data, 0, 3, chunk_id=big - 3, total_slices=big, file_number=big, f_lo=-0.0
        ),
        now=math.pi,
    )
    extreme.apply(
        _partial(
            extreme_data, 0, 3, chunk_id=big - 3, total_slices=big, file_number=big, f_lo=-0.0
        ),
        now=math.e,
    )
    extreme.moments.mean[:3] = [5e-324, 1.7976931348623157e308, -0.0]

    closed = FileAccumulator.open(_partial(data, 0, 5), now=1.0)
    closed.apply(_partial(data, 0, 5), now=1.0)
    closed.apply(_partial(data, 30, 40), now=1.0)
    closed.closed, closed.revision = True, 1
    closed.apply(_partial(data, 10, 20), now=9.0)  # late: two ranges of slices are still open
    closed.revision = 2
    return {
        "opened": opened,
        "partly": partly,
        "finished": finished,
        "extreme": extreme,
        "closed": closed,
    }


@pytest.mark.parametrize("state", ["opened", "partly", "finished", "extreme", "closed"])
def test_file_accumulator_round_trips_exactly(state: str) -> None:
    acc = _file_states()[state]
    data = acc.to_bytes()
    decoded = FileAccumulator.from_bytes(data)
    _assert_same_file(decoded, acc)
    assert decoded.to_bytes() == data
    for buffer in (bytearray(data), memoryview(data)):
        _assert_same_file(FileAccumulator.from_bytes(buffer), acc)


def test_decoded_file_accumulator_keeps_working() -> None:
    """A restored accumulator dedups and finishes like the original."""
    rng = np.random.default_rng(7)
    data = _spectra(rng, 25)
    partials = [_partial(data, a, b) for a, b in _cuts(rng, 25)]
    acc = FileAccumulator.open(partials[0], now=0.0)
    for p in partials[:-1]:
        acc = FileAccumulator.from_bytes(acc.to_bytes())
        acc.apply(p, now=1.0)
        acc.apply(p, now=1.0)
    acc = FileAccumulator.from_bytes(acc.to_bytes())
    assert not acc.apply(partials[0], now=2.0)
    assert acc.apply(partials[-1], now=2.0)
    assert acc.finished
    assert acc.duplicates == len(partials)  # one per re-applied chunk, plus the extra one
    _assert_numpy_moments(acc.moments, data)


def test_truncated_file_accumulator_is_rejected_at_every_length() -> None:
    data = _file_states()["partly"].to_bytes()
    for cut in range(len(data)):
        with pytest.raises(MessageDecodeError):
            FileAccumulator.from_bytes(data[:cut])


def test_run_accumulator_bytes_are_not_a_file_accumulator() -> None:
    acc = _file_states()["partly"]
    run = RunAccumulator.start(acc)
    run.merge_file(acc)
    with pytest.raises(MessageDecodeError, match="magic"):
        FileAccumulator.from_bytes(run.to_bytes())
    with pytest.raises(MessageDecodeError, match="magic"):
        RunAccumulator.from_bytes(acc.to_bytes())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
@pytest.mark.parametrize("cls", [FileAccumulator, RunAccumulator])
def test_random_bytes_are_rejected(
    cls: type[FileAccumulator] | type[RunAccumulator], data: bytes
) -> None:
    with pytest.raises(MessageDecodeError):
        cls.from_bytes(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
@pytest.mark.parametrize(("cls", "magic"), [(FileAccumulator, b"QXFA"), (RunAccumulator, b"QXRA")])
def test_garbage_after_the_magic_raises_only_decode_errors(
    cls: type[FileAccumulator] | type[RunAccumulator], magic: bytes, data: bytes
) -> None:
    """Whatever follows a right magic: a decode error or an accumulator, nothing else."""
    try:
        decoded = cls.from_bytes(magic + data)
    except MessageDecodeError:
        return
    assert type(decoded) is cls


def _patched(data: bytes, offset: int, raw: bytes) -> bytes:
    return data[:offset] + raw + data[offset + len(raw) :]


def _unchecked_encoding(kind: str) -> tuple[type[FileAccumulator] | type[RunAccumulator], bytes]:
    file_state = _file_states()["partly"]
    file_bytes = file_state.to_bytes()
    run_bytes = RunAccumulator.start(file_state).to_bytes()
    zeros = b"\0" * 200
    return {
        "file-v1": (FileAccumulator, _patched(file_bytes, 4, b"\x01")),
        "file-trailing": (FileAccumulator, file_bytes + b"\0" * 8),
        "file-n_fft-0": (FileAccumulator, b"QXFA" + zeros),
        "run-v1": (RunAccumulator, _patched(run_bytes, 4, b"\x01")),
        "run-trailing": (RunAccumulator, run_bytes + b"\0" * 8),
        "run-n_fft-0": (RunAccumulator, b"QXRA" + zeros),
    }[kind]


@pytest.mark.parametrize(
    "kind", ["file-v1", "file-trailing", "file-n_fft-0", "run-v1", "run-trailing", "run-n_fft-0"]
)
def test_accumulator_decoding_checks_version_length_and_fields(kind: str) -> None:
    cls, data = _unchecked_encoding(kind)
    with pytest.raises(MessageDecodeError):
        cls.from_bytes(data)


def test_a_files_daq_time_is_the_latest_of_its_chunks_whatever_their_order() -> None:
    # Chunks sent while the DAQ writes the file carry the time their data was on disk.
    data = _spectra(np.random.default_rng(3), 12)
    times = [DAQ_TIME + 0.1, DAQ_TIME + 4.1, DAQ_TIME + 2.0]
    partials = [
        _partial(data, a, b, daq_time=t)
        for (a, b), t in zip([(0, 4), (8, 12), (4, 8)], times, strict=True)
    ]
    acc = FileAccumulator.open(partials[0], now=0.0)
    for partial in (partials[0], partials[1], partials[1], partials[2]):
        acc.apply(partial, now=0.0)
    assert acc.daq_time == DAQ_TIME + 4.1
    assert FileAccumulator.from_bytes(acc.to_bytes()).daq_time == DAQ_TIME + 4.1


# --- RunAccumulator ----------------------------------------------------------------------------


def _closed_files(
    rng: np.random.Generator,
) -> tuple[list[FileAccumulator], dict[int, NDArray[np.float64]], int]:
    """Files in every closing state, with the slices each one merged, and their duplicates."""
    files, merged = [], {}
    duplicates = 0
    # Complete files, with redeliveries.
    for number in (3, 4, 10):
        acc, data, partials = _filled_file(rng, int(rng.integers(5, 40)), file_number=number)
        for p in partials[: number % 3 + 1]:
            assert not acc.apply(p, now=3.0)
            duplicates += 1
        files.append(acc)
        merged[number] = data
    # Finished with a skipped chunk.
    data = _spectra(rng, 20)
    acc = FileAccumulator.open(_skip(20, 5, 9, file_number=5), now=0.0)
    for message in (_partial(data, 0, 5, file_number=5), _skip(20, 5, 9, file_number=5)):
        acc.apply(message, now=0.0)
    acc.apply(_partial(data, 9, 20, file_number=5), now=0.0)
    assert acc.finished
    assert not acc.complete
    files.append(acc)
    merged[5] = np.concatenate([data[:5], data[9:]])
    # Closed after a timeout: missing chunks.
    data = _spectra(rng, 30)
    acc = FileAccumulator.open(_partial(data, 10, 18, file_number=6), now=0.0)
    acc.apply(_partial(data, 10, 18, file_number=6), now=0.0)
    acc.apply(_partial(data, 25, 30, file_number=6), now=0.0)
    assert not acc.finished
    files.append(acc)
    merged[6] = np.concatenate([data[10:18], data[25:30]])
    # Only skipped chunks: nothing to merge, but the file counts.
    acc = FileAccumulator.open(_skip(8, 0, 8, file_number=1), now=0.0)
    acc.apply(_skip(8, 0, 8, file_number=1), now=0.0)
    files.append(acc)
    merged[1] = np.empty((0, N_BINS))
    return files, merged, duplicates


@pytest.mark.parametrize("seed", range(4))
def test_run_accumulator_equals_numpy_over_all_merged_slices(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    files, merged, duplicates = _closed_files(rng)
    order = rng.permutation(len(files))
    run = RunAccumulator.start(files[order[0]])
    assert (run.run_id, run.n_fft, run.fs, run.f_lo) == (RUN, N_BINS, FS, F_LO)
    assert (run.moments.n, len(run.files), run.last_file) == (0, 0, -1)
    for index in order:
        assert run.merge_file(files[index])

    _assert_numpy_moments(run.moments, np.concatenate([merged[f.file_number] for f in files]))
    assert len(run.files) == len(files)
    assert run.files.ranges == [(1, 2), (3, 7), (10, 11)]
    assert run.incomplete_files == 3
    assert run.duplicates == duplicates
    assert run.first_daq_time == min(f.daq_time for f in files)
    assert run.last_daq_time == max(f.daq_time for f in files)
    assert run.last_file == 10

    # Merging a file again is a no-op.
    before = run.to_bytes()
    for index in rng.permutation(len(files)):
        assert not run.merge_file(files[index])
    assert run.to_bytes() == before


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"n_fft": 2 * N_BINS}, "n_fft"),
        ({"fs": FS * 2}, "fs"),
        ({"run_id": "another-run"}, "another run"),
    ],
)
def test_run_rejects_a_file_of_other_settings(override: dict[str, Any], match: str) -> None:
    rng = np.random.default_rng(8)
    first, _, _ = _filled_file(rng, 10, file_number=1)
    run = RunAccumulator.start(first)
    run.merge_file(first)
    before = run.to_bytes()
    n_fft = override.get("n_fft", N_BINS)
    data = _spectra(rng, 10, n_fft)
    fields = {k: v for k, v in override.items() if k != "n_fft"}
    other = FileAccumulator.open(_partial(data, 0, 10, file_number=2, **fields), now=0.0)
    other.apply(_partial(data, 0, 10, file_number=2, **fields), now=0.0)
    with pytest.raises(ValueError, match=match):
        run.merge_file(other)
    assert run.to_bytes() == before


def _assert_same_run(decoded: RunAccumulator, expected: RunAccumulator) -> None:
    assert type(decoded) is RunAccumulator
    assert (decoded.run_id, decoded.n_fft) == (expected.run_id, expected.n_fft)
    for name in ("fs", "f_lo", "first_daq_time", "last_daq_time"):
        assert _bits(getattr(decoded, name)) == _bits(getattr(expected, name)), name
    assert _same_moments(decoded.moments, expected.moments)
    assert decoded.files.starts == expected.files.starts
    assert decoded.files.stops == expected.files.stops
    assert decoded.incomplete.ranges == expected.incomplete.ranges
    assert decoded.awaiting == expected.awaiting
    for name in ("duplicates", "late_chunks", "dropped_late_chunks", "forgotten_files"):
        assert getattr(decoded, name) == getattr(expected, name), name
    assert decoded.last_file == expected.last_file


@pytest.mark.parametrize("merged", [0, 1, 6])
def test_run_accumulator_round_trips_exactly(merged: int) -> None:
    files, _, _ = _closed_files(np.random.default_rng(9))
    run = RunAccumulator.start(files[0])
    run.run_id = "µ-run/é 🛰"
    for f in files[:merged]:
        f.run_id = run.run_id
        run.merge_file(f)
    data = run.to_bytes()
    decoded = RunAccumulator.from_bytes(data)
    _assert_same_run(decoded, run)
    assert decoded.to_bytes() == data
    for f in files[:merged]:  # the restored run still knows which files it has
        assert not decoded.merge_file(f)
    for cut in range(len(data)):
        with pytest.raises(MessageDecodeError):
            RunAccumulator.from_bytes(data[:cut])


def test_late_chunks_merge_into_the_run_and_it_round_trips() -> None:
    """A file closed with slices missing takes its late chunks; the run equals numpy."""
    rng = np.random.default_rng(12)
    data = _spectra(rng, 30)
    file = FileAccumulator.open(_partial(data, 0, 10), now=0.0)
    file.apply(_partial(data, 0, 10), now=0.0)
    run = RunAccumulator.start(file)
    run.merge_file(file)
    file.closed = True
    assert run.await_late(7, keep=2) == []
    assert (run.incomplete_files, run.awaiting) == (1, [7])

    for a, b in [(20, 30), (10, 20)]:
        late = _partial(data, a, b)
        assert file.apply(late, now=1.0)
        run.merge_late(late, file)
    assert (file.late, file.complete, run.late_chunks) == (2, True, 2)
    assert (run.incomplete_files, run.awaiting) == (0, [])
    _assert_numpy_moments(run.moments, data)

    assert run.await_late(8, keep=2) == []
    assert run.await_late(9, keep=2) == []
    assert run.await_late(10, keep=2) == [8]  # the oldest goes beyond the bound
    run.dropped_late_chunks = 3
    decoded = RunAccumulator.from_bytes(run.to_bytes())
    _assert_same_run(decoded, run)
    assert (decoded.awaiting, decoded.forgotten_files) == ([9, 10], 1)
