"""The run-progress record: what it remembers of delivered files, and strict decoding."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quaxspec.daq import DaqRecord, PairDigest
from quaxspec.messages import MessageDecodeError
from quaxspec.progress import FileMark, RunConfig, RunProgress, Shard

CONFIG = RunConfig(n_fft=3072, fs=2e6, f_lo=9.5e9, slices_per_chunk=32)


def _progress(**fields: object) -> RunProgress:
    defaults: dict[str, object] = {
        "run_id": "run-1",
        "source": "watch:/daq/out",
        "config": CONFIG,
        "started_time": 1_790_000_000.0,
        "updated_time": 1_790_000_000.0,
    }
    return RunProgress(**(defaults | fields))  # type: ignore[arg-type]


def _mark(number: int, fingerprint: str = "ab" * 16) -> FileMark:
    return FileMark(
        number=number, fingerprint=fingerprint, daq_time=1_790_000_000.0 + number, samples=2**23
    )


def test_delivered_files_are_remembered_with_the_lowest_and_highest_marks() -> None:
    progress = _progress()
    for number in (5, 6, 9, 7, 3):
        progress = progress.delivered(_mark(number), now=2e9 + number)

    assert progress.files.ranges == [(3, 4), (5, 8), (9, 10)]
    assert (progress.first, progress.last) == (_mark(3), _mark(9))
    assert progress.updated_time == 2e9 + 3
    assert _progress().files.ranges == []  # the original is not changed


def test_a_finished_run_reopens_when_another_file_is_delivered() -> None:
    progress = _progress().delivered(_mark(0), now=1.0).ended(now=2.0)
    assert progress.finished
    assert not progress.delivered(_mark(1), now=3.0).finished


@settings(max_examples=100, deadline=None)
@given(
    numbers=st.lists(st.integers(0, 2**32 - 1), max_size=30),
    samples=st.one_of(st.none(), st.integers(1, 2**40)),
    finished=st.booleans(),
)
def test_progress_round_trips_exactly(
    numbers: list[int], samples: int | None, finished: bool
) -> None:
    config = RunConfig(n_fft=4096, fs=1e6, f_lo=-3.5, slices_per_chunk=7, samples_per_file=samples)
    progress = _progress(config=config, finished=finished)
    for number in numbers:
        progress = progress.delivered(_mark(number, f"{number:032x}"), now=1e9)
    progress = progress.ended(now=1.5e9) if finished else progress

    decoded = RunProgress.from_bytes(progress.to_bytes())

    assert decoded == progress
    assert json.loads(progress.to_bytes())["file_count"] == len(set(numbers))


def test_config_differences_name_each_field_with_both_values() -> None:
    other = RunConfig(n_fft=4096, fs=2e6, f_lo=9.5e9, slices_per_chunk=16)
    assert CONFIG.differences(other) == ["n_fft 3072 ≠ 4096", "slices_per_chunk 32 ≠ 16"]
    assert CONFIG.differences(CONFIG) == []
    assert "n_fft 3072" in CONFIG.describe()


def _document() -> dict[str, object]:
    result: dict[str, object] = json.loads(_progress().delivered(_mark(4), now=1.0).to_bytes())
    return result


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        (("schema",), "quax.run-progress/2", "expected schema"),
        (("run_id",), "", "string of 1–255 bytes"),
        (("config", "n_fft"), 1e999, "Infinity is not a JSON number"),
        (("config", "n_fft"), True, "not an integer"),
        (("config", "fs_hz"), 0, "not positive"),
        (("config", "samples_per_file"), "many", "not an integer"),
        (("started_time",), None, "not a finite number"),
        (("finished",), "yes", "not true or false"),
        (("files",), [[5, 3]], "empty or negative"),
        (("files",), [[0, 4], [2, 9]], "sorted, disjoint"),
        (("files",), [[0, 4, 5]], "sorted, disjoint"),
        (("files",), {"0": 4}, "list of at most"),
        (
            ("first",),
            {"number": 1, "fingerprint": "XYZ", "daq_time": 0, "samples": 1},
            "lower-case",
        ),
        (("last",), {"number": -1, "fingerprint": "ab", "daq_time": 0, "samples": 1}, "not an"),
        (("last",), {"number": 1, "fingerprint": "ab", "daq_time": 0, "samples": 0}, "not an"),
        (("shard",), "3/2", "1 ≤ K ≤ N"),
        (("shard",), "0/2", "1 ≤ K ≤ N"),
        (("shard",), "two", "of the form K/N"),
        (("shard",), 2, "not a string"),
    ],
)
def test_malformed_fields_are_decode_errors_with_the_reason(
    path: tuple[str, ...], value: object, reason: str
) -> None:
    document = _document()
    target: dict[str, object] = document
    for key in path[:-1]:
        target = target[key]  # type: ignore[assignment]
    target[path[-1]] = value

    with pytest.raises(MessageDecodeError, match=reason):
        RunProgress.from_bytes(json.dumps(document).encode())


@pytest.mark.parametrize(
    "data",
    [
        None,
        b"",
        b"[]",
        b"\xff\xfe{\x00}\x00",  # UTF-16 JSON
        b'{"schema": "quax.run-progress/1", "run_id": "x"}',  # fields missing
        b'{"schema": "quax.run-progress/1", "files": ' + b"9" * 5000 + b"}",  # a huge integer
        b"[" * 100_000,  # nested past the recursion limit
    ],
)
def test_garbage_is_a_decode_error(data: bytes | None) -> None:
    with pytest.raises(MessageDecodeError):
        RunProgress.from_bytes(data)


def test_a_pairs_fingerprint_follows_its_content_not_its_name_or_time() -> None:
    rng = np.random.default_rng(1)
    i, q = rng.standard_normal((2, 3072 * 4), dtype=np.float32)

    def record(i: np.ndarray, q: np.ndarray, number: int = 0, time: float = 0.0) -> DaqRecord:
        return DaqRecord(number=number, i=i, q=q, daq_time=time, source="x")

    same = record(i, q).fingerprint()
    assert record(i.copy(), q.copy(), number=7, time=5.0).fingerprint() == same
    assert len(same) == 32
    assert all(c in "0123456789abcdef" for c in same)
    changed = q.copy()
    changed[-1] += 1.0  # the very last sample
    assert record(i, changed).fingerprint() != same
    assert record(q, i).fingerprint() != same  # I and Q swapped
    pieces = PairDigest()  # as a pair sent while it is written: piece by piece, in order
    for start in range(0, i.size, 1000):
        pieces.update(i[start : start + 1000], q[start : start + 1000])
    assert pieces.hexdigest() == same


@given(st.integers(1, 12), st.lists(st.integers(0, 2**32 - 1), max_size=50))
def test_the_shards_of_a_run_take_every_file_exactly_once(count: int, numbers: list[int]) -> None:
    shards = [Shard.parse(f"{k}/{count}") for k in range(1, count + 1)]
    for number in numbers:
        assert sum(shard.takes(number) for shard in shards) == 1


def test_each_shard_has_its_own_record_beside_the_whole_run() -> None:
    whole = _progress()
    first, second = (_progress(shard=Shard(k, 2)).delivered(_mark(k - 1), now=2e9) for k in (1, 2))
    assert len({whole.key, first.key, second.key}) == 3
    assert whole.key == b"run-1"  # as before shards existed
    for progress in (whole, first, second):
        assert RunProgress.from_bytes(progress.to_bytes()) == progress
    assert json.loads(second.to_bytes())["shard"] == "2/2"


def test_a_record_written_before_shards_existed_is_a_whole_run() -> None:
    document = json.loads(_progress().to_bytes())
    del document["shard"]
    assert RunProgress.from_bytes(json.dumps(document).encode()).shard is None
