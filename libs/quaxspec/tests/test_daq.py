"""Tests for quaxspec.daq: file pairing, validation, memory-mapped reading and slicing."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

from quaxspec.daq import (
    SAMPLE_DTYPE,
    DaqFileError,
    DaqRecord,
    FilePair,
    SliceLayout,
    check_pair_sizes,
    pair_names,
    pair_paths,
    read_pair,
    record_from_bytes,
    scan_directory,
    write_pair,
)

N = 3000  # samples per file in these tests: small, but several slices of any test n_fft


def _samples(seed: int, n: int = N) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal(n).astype(np.float32),
        rng.standard_normal(n).astype(np.float32),
    )


def _write(directory: Path, number: int, n: int = 16) -> FilePair:
    i, q = _samples(number, n)
    return write_pair(directory, number, i, q)


# --- naming and scanning -------------------------------------------------------------------


def test_pair_paths_uses_five_digit_names_and_more_digits_when_needed(tmp_path: Path) -> None:
    assert pair_paths(tmp_path, 7) == (tmp_path / "duck_i_00007.dat", tmp_path / "duck_q_00007.dat")
    assert pair_paths(tmp_path, 123456) == (
        tmp_path / "duck_i_123456.dat",
        tmp_path / "duck_q_123456.dat",
    )


def test_scan_directory_pairs_files_in_numeric_order(tmp_path: Path) -> None:
    # Sorted as names, "duck_i_100000.dat" would come before "duck_i_99999.dat".
    numbers = [100000, 2, 99999, 10, 0, 100001]
    for number in numbers:
        _write(tmp_path, number)
    scan = scan_directory(tmp_path)
    assert scan.problems == []
    assert [pair.number for pair in scan.pairs] == [0, 2, 10, 99999, 100000, 100001]
    for pair in scan.pairs:
        digits = f"{pair.number:05d}"
        assert pair.i_path == tmp_path / f"duck_i_{digits}.dat"
        assert pair.q_path == tmp_path / f"duck_q_{digits}.dat"


def test_scan_directory_ignores_files_that_are_not_daq_files(tmp_path: Path) -> None:
    _write(tmp_path, 5)
    for name in [
        "duck_i_00006.txt",
        "duck_x_00006.dat",
        "duck_i_0006.dat",  # only four digits
        "duck_I_00006.dat",
        "xduck_i_00006.dat",
        "duck_i_00006.dat.bak",
        "duck_i_00006a.dat",
        "notes.md",
    ]:
        (tmp_path / name).write_bytes(b"\0\0\0\0")
    scan = scan_directory(tmp_path)
    assert [pair.number for pair in scan.pairs] == [5]
    assert scan.problems == []


def test_scan_directory_empty(tmp_path: Path) -> None:
    scan = scan_directory(tmp_path)
    assert scan.pairs == []
    assert scan.problems == []


@pytest.mark.parametrize("channel", ["i", "q"])
def test_scan_directory_reports_a_missing_partner_and_keeps_the_other_pairs(
    tmp_path: Path, channel: str
) -> None:
    _write(tmp_path, 1)
    _write(tmp_path, 3)
    lone_pair = _write(tmp_path, 2)
    lone = lone_pair.i_path if channel == "i" else lone_pair.q_path
    partner = lone_pair.q_path if channel == "i" else lone_pair.i_path
    partner.unlink()

    scan = scan_directory(tmp_path)

    assert [pair.number for pair in scan.pairs] == [1, 3]
    assert len(scan.problems) == 1
    problem = scan.problems[0]
    assert isinstance(problem, DaqFileError)
    assert problem.path == lone
    assert lone.name in str(problem)
    missing = "Q" if channel == "i" else "I"
    assert f"no {missing} partner" in str(problem)


def test_scan_directory_reports_every_lone_file_in_order(tmp_path: Path) -> None:
    _write(tmp_path, 10)
    i_only, _ = pair_paths(tmp_path, 100000)
    _, q_only = pair_paths(tmp_path, 4)
    i_only.write_bytes(b"\0" * 8)
    q_only.write_bytes(b"\0" * 8)

    scan = scan_directory(tmp_path)

    assert [pair.number for pair in scan.pairs] == [10]
    assert [problem.path for problem in scan.problems] == [q_only, i_only]


def test_scan_directory_a_directory_is_not_a_partner(tmp_path: Path) -> None:
    i_path, q_path = pair_paths(tmp_path, 8)
    i_path.write_bytes(b"\0" * 8)
    q_path.mkdir()
    scan = scan_directory(tmp_path)
    assert scan.pairs == []
    assert [problem.path for problem in scan.problems] == [i_path]


def test_scan_directory_rejects_a_path_that_is_not_a_directory(tmp_path: Path) -> None:
    file = tmp_path / "duck_i_00001.dat"
    file.write_bytes(b"\0" * 4)
    for path in (file, tmp_path / "missing"):
        with pytest.raises(DaqFileError, match="not a directory") as excinfo:
            scan_directory(path)
        assert excinfo.value.path == path


# --- reading -------------------------------------------------------------------------------


def test_write_pair_writes_little_endian_float32(tmp_path: Path) -> None:
    i = np.array([1.0, -2.5, 3.25], dtype=np.float64)  # converted on write
    q = np.array([0.5, 0.0, -1.0e-3], dtype=np.float32)
    pair = write_pair(tmp_path, 42, i, q)
    assert pair == FilePair(42, tmp_path / "duck_i_00042.dat", tmp_path / "duck_q_00042.dat")
    assert pair.i_path.read_bytes() == struct.pack("<3f", 1.0, -2.5, 3.25)
    assert pair.q_path.read_bytes() == struct.pack("<3f", 0.5, 0.0, -1.0e-3)


def test_write_pair_rejects_different_lengths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="differ"):
        write_pair(tmp_path, 1, np.zeros(4, np.float32), np.zeros(5, np.float32))
    assert list(tmp_path.iterdir()) == []


def test_read_pair_reads_back_exactly_the_written_samples(tmp_path: Path) -> None:
    i, q = _samples(1)
    # Values a lossy or byte-swapped reader would get wrong.
    i[:6] = [np.nan, np.inf, -np.inf, -0.0, np.float32(1e-45), np.finfo(np.float32).max]
    pair = write_pair(tmp_path, 17, i, q)

    record = read_pair(pair)

    assert isinstance(record.i, np.memmap)
    assert isinstance(record.q, np.memmap)
    assert record.i.dtype == SAMPLE_DTYPE
    assert record.q.dtype == SAMPLE_DTYPE
    assert not record.i.flags.writeable
    assert record.number == 17
    assert record.n_samples == N
    assert record.source == str(pair.i_path)
    assert record.i.tobytes() == i.astype("<f4").tobytes()
    assert record.q.tobytes() == q.astype("<f4").tobytes()


def test_read_pair_reads_bytes_written_by_hand(tmp_path: Path) -> None:
    # Independent of write_pair: the on-disk format is raw little-endian float32.
    i_path, q_path = pair_paths(tmp_path, 3)
    i_path.write_bytes(struct.pack("<4f", 1.0, -2.0, 0.5, 1024.0))
    q_path.write_bytes(struct.pack("<4f", -0.25, 3.0, 7.5, -8.0))
    record = read_pair(FilePair(3, i_path, q_path))
    assert record.i.tolist() == [1.0, -2.0, 0.5, 1024.0]
    assert record.q.tolist() == [-0.25, 3.0, 7.5, -8.0]


def test_read_pair_daq_time_is_the_latest_mtime_unless_given(tmp_path: Path) -> None:
    pair = _write(tmp_path, 1)
    os.utime(pair.i_path, (1_700_000_000, 1_700_000_100))
    os.utime(pair.q_path, (1_700_000_000, 1_700_000_250))
    assert read_pair(pair).daq_time == 1_700_000_250
    assert read_pair(pair, daq_time=12.5).daq_time == 12.5


@pytest.mark.parametrize("channel", ["i", "q"])
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"\0" * 1, "not a whole number of float32 samples"),
        (b"\0" * 2, "not a whole number of float32 samples"),
        (b"\0" * (4 * 16 + 3), "not a whole number of float32 samples"),
        (b"\0" * (4 * 16 - 1), "not a whole number of float32 samples"),
    ],
    ids=["empty", "1-byte", "2-bytes", "67-bytes", "63-bytes"],
)
def test_read_pair_rejects_a_bad_file_and_names_it(
    tmp_path: Path, channel: str, content: bytes, reason: str
) -> None:
    pair = _write(tmp_path, 9, n=16)
    bad = pair.i_path if channel == "i" else pair.q_path
    bad.write_bytes(content)

    with pytest.raises(DaqFileError) as excinfo:
        read_pair(pair)

    assert excinfo.value.path == bad
    assert str(bad) in str(excinfo.value)
    assert reason in str(excinfo.value)


@pytest.mark.parametrize(("n_i", "n_q"), [(16, 15), (15, 16), (1, 3000)])
def test_read_pair_rejects_i_and_q_of_different_lengths(tmp_path: Path, n_i: int, n_q: int) -> None:
    i_path, q_path = pair_paths(tmp_path, 77)
    np.zeros(n_i, SAMPLE_DTYPE).tofile(i_path)
    np.zeros(n_q, SAMPLE_DTYPE).tofile(q_path)

    with pytest.raises(DaqFileError) as excinfo:
        read_pair(FilePair(77, i_path, q_path))

    message = str(excinfo.value)
    assert i_path.name in message
    assert q_path.name in message
    assert f"{n_i} samples" in message
    assert str(n_q) in message


@pytest.mark.parametrize("channel", ["i", "q"])
def test_read_pair_rejects_a_missing_file(tmp_path: Path, channel: str) -> None:
    pair = _write(tmp_path, 4)
    gone = pair.i_path if channel == "i" else pair.q_path
    gone.unlink()
    with pytest.raises(DaqFileError, match="unreadable") as excinfo:
        read_pair(pair)
    assert excinfo.value.path == gone


# --- slicing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_samples", "n_fft", "n_slices", "remainder"),
    [
        (2**23, 3072, 2730, 2048),  # public data set: 2730·3072 = 8386560
        (8193 * 2**10, 3072, 2731, 0),  # task text: 8193·1024 = 2731·3·1024
        (3072, 3072, 1, 0),
        (3071, 3072, 0, 3071),
        (3073, 3072, 1, 1),
        (0, 2, 0, 0),
        (7, 2, 3, 1),
        (2**23, 2**23, 1, 0),
    ],
)
def test_slice_layout(n_samples: int, n_fft: int, n_slices: int, remainder: int) -> None:
    layout = SliceLayout(n_samples, n_fft)
    assert layout.n_slices == n_slices
    assert layout.remainder == remainder


@pytest.mark.parametrize("n_fft", [1, 0, -3072])
def test_slice_layout_rejects_n_fft_below_two(n_fft: int) -> None:
    with pytest.raises(ValueError, match="n_fft"):
        SliceLayout(4096, n_fft)


def _counting_record(n_samples: int) -> DaqRecord:
    i = np.arange(n_samples, dtype=np.float32)
    return DaqRecord(number=1, i=i, q=-i, daq_time=0.0, source="synthetic")


def test_record_layout() -> None:
    record = _counting_record(73)
    assert record.n_samples == 73
    assert record.layout(7) == SliceLayout(73, 7)
    assert record.layout(7).n_slices == 10


def test_slices_default_covers_all_complete_slices_and_drops_the_remainder() -> None:
    record = _counting_record(73)  # 10 slices of 7, 3 samples left over
    i, q = record.slices(7)
    assert i.shape == q.shape == (10, 7)
    assert i[0].tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert i[9].tolist() == [63, 64, 65, 66, 67, 68, 69]
    assert q[9, 6] == -69
    assert np.shares_memory(i, record.i)
    assert np.shares_memory(q, record.q)


@pytest.mark.parametrize(
    ("start", "stop", "first_sample", "k"),
    [(0, 1, 0, 1), (2, 5, 14, 3), (9, None, 63, 1), (4, 4, None, 0), (10, 10, None, 0)],
)
def test_slices_subrange(start: int, stop: int | None, first_sample: int | None, k: int) -> None:
    record = _counting_record(73)
    i, q = record.slices(7, start, stop)
    assert i.shape == q.shape == (k, 7)
    if first_sample is not None:
        expected = np.arange(first_sample, first_sample + 7 * k, dtype=np.float32).reshape(k, 7)
        assert np.array_equal(i, expected)
        assert np.array_equal(q, -expected)


@pytest.mark.parametrize(
    ("start", "stop"),
    [(-1, None), (-1, 3), (0, 11), (5, 4), (11, None), (11, 11), (0, -1)],
)
def test_slices_rejects_ranges_outside_the_file(start: int, stop: int | None) -> None:
    record = _counting_record(73)
    with pytest.raises(ValueError, match=r"outside 0:10"):
        record.slices(7, start, stop)


def test_slices_of_a_memory_mapped_record_are_views_of_the_file(tmp_path: Path) -> None:
    i, q = _samples(5)
    record = read_pair(write_pair(tmp_path, 5, i, q))
    n_fft = 256  # 3000 samples: 11 slices, 184 left over
    si, sq = record.slices(n_fft, 3, 7)
    assert si.shape == sq.shape == (4, n_fft)
    assert np.shares_memory(si, record.i)
    assert np.array_equal(si, i[3 * n_fft : 7 * n_fft].reshape(4, n_fft))
    assert np.array_equal(sq, q[3 * n_fft : 7 * n_fft].reshape(4, n_fft))
    with pytest.raises(ValueError, match="outside 0:11"):
        record.slices(n_fft, 0, 12)


def test_names_pair_as_files_do_whatever_comes_before_the_last_slash():
    names = [
        "s3://b/run/duck_q_00002.dat",
        "s3://b/run/duck_i_00002.dat",
        "s3://b/run/duck_i_00001.dat",  # no Q partner
        "s3://b/run/notes.txt",
        "s3://b/run/duck_i_123456.dat",
        "s3://b/run/duck_q_123456.dat",
    ]

    pairing = pair_names(names)

    assert pairing.pairs == [
        (2, "s3://b/run/duck_i_00002.dat", "s3://b/run/duck_q_00002.dat"),
        (123456, "s3://b/run/duck_i_123456.dat", "s3://b/run/duck_q_123456.dat"),
    ]
    [problem] = pairing.problems
    assert str(problem) == "s3://b/run/duck_i_00001.dat: no Q partner (duck_q_…)"


@pytest.mark.parametrize(
    ("i_bytes", "q_bytes", "message"),
    [
        (0, 8, "i: empty file"),
        (8, 6, "q: size 6 bytes is not a whole number of float32 samples (truncated?)"),
        (16, 8, "i: I has 4 samples but q has 2"),
    ],
)
def test_pair_sizes_are_checked_before_reading(i_bytes, q_bytes, message):
    with pytest.raises(DaqFileError) as error:
        check_pair_sizes("i", i_bytes, "q", q_bytes)
    assert str(error.value) == message


def test_a_record_from_bytes_is_checked_and_holds_the_samples_without_copy():
    i = np.arange(6, dtype="<f4")
    record = record_from_bytes(
        3, i.tobytes(), (-i).tobytes(), i_name="s3://b/duck_i_00003.dat", q_name="q", daq_time=1.5
    )
    np.testing.assert_array_equal(record.q, -i)
    assert (record.number, record.source, record.daq_time) == (3, "s3://b/duck_i_00003.dat", 1.5)
    with pytest.raises(DaqFileError, match="I has 6 samples but q has 5"):
        record_from_bytes(3, i.tobytes(), i[:5].tobytes(), i_name="i", q_name="q", daq_time=0)
