"""The watched folder: a pair is taken as soon as it is complete, exactly once per content.

The trackers are tested alone; the whole watch runs on a real folder with both methods
(inotify close events, and polling as on network file systems).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import numpy as np
import pytest

from quax_producer import watch
from quax_producer.items import BadPair
from quax_producer.watch import (
    CloseTracker,
    Frontier,
    PairLook,
    Settler,
    file_system_type,
    parse_name,
    resolve_method,
    watch_source,
)
from quaxspec.daq import DaqRecord, FilePair, pair_paths

POLL = 0.02
METHODS = ["events", "poll"]


# --- the pure parts ----------------------------------------------------------------------


def test_daq_names_are_parsed_and_others_ignored():
    assert parse_name("duck_i_00042.dat") == ("i", 42)
    assert parse_name("duck_q_1234567.dat") == ("q", 1234567)
    for other in ("duck_i_042.dat", "duck_x_00001.dat", "duck_i_00001.dat.tmp", "notes.txt",
                  ".duck_i_00001.dat.swp", "duck_i_0000a.dat", "duck_i00001.dat"):  # fmt: skip
        assert parse_name(other) is None, other


def test_a_pair_is_ready_when_both_files_are_closed_and_not_written_since():
    tracker = CloseTracker(settle=1.0)
    tracker.written("i", 3, now=0.0)
    tracker.closed("i", 3, now=0.1)
    tracker.waiting_for("q", 3)  # looked: Q is not there yet
    assert tracker.ready(now=5.0) == []
    tracker.written("q", 3, now=5.2)
    tracker.closed("q", 3, now=5.3)
    tracker.written("i", 3, now=5.35)  # reopened and appended to
    assert tracker.ready(now=5.4) == []
    tracker.closed("i", 3, now=5.5)
    assert tracker.ready(now=5.5) == [3]  # at once: no settle time for announced pairs
    tracker.done(3)
    assert tracker.ready(now=5.6) == []
    assert len(tracker) == 0


def test_a_file_written_before_the_watch_counts_as_closed_once_its_pair_is_quiet():
    tracker = CloseTracker(settle=1.0)
    tracker.assume(7, now=10.0)
    tracker.assume(8, now=10.0)
    tracker.closed("q", 9, now=10.0)  # Q announced; I was written before the watch began
    assert tracker.ready(now=10.5) == []
    assert tracker.next_deadline() == 11.0
    tracker.written("q", 8, now=10.6)  # still being written: now it needs its close
    assert tracker.ready(now=11.0) == [7, 9]
    tracker.closed("q", 8, now=11.2)
    assert tracker.ready(now=11.2) == [7, 9]
    assert tracker.ready(now=12.2) == [7, 8, 9]
    tracker.gone(7)
    assert tracker.ready(now=12.5) == [8, 9]


def test_a_pair_settles_after_the_same_signature_in_consecutive_looks():
    settler = Settler(settle_polls=3)
    pair = FilePair(1, Path("i"), Path("q"))
    looks = [PairLook(pair, s, s, 5, 5) for s in (0, 0, 0, 8, 8, 16, 16, 16)]
    settled = [settler.observe(look) for look in looks]
    assert settled == [False, False, False, False, False, False, False, True]
    assert settler.following == []  # forgotten once settled


def test_the_frontier_follows_the_newest_pair_written_and_keeps_the_lowest():
    frontier = Frontier(ahead=2)
    assert frontier.numbers() == []
    frontier.took(10)
    frontier.took(40)
    assert frontier.numbers() == [10, 41, 42]
    frontier.took(41, mtime_ns=1_000)
    assert frontier.numbers() == [10, 42, 43]
    frontier.took(0, mtime_ns=2_000)  # the DAQ numbers from 0 again
    assert frontier.numbers() == [0, 1, 2]
    frontier.took(55, mtime_ns=500)  # an old pair found by a listing does not lead the look
    assert frontier.numbers() == [0, 1, 2]


MOUNTINFO = """\
22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 0:35 / /daq rw,relatime shared:20 - nfs4 server:/export rw
41 40 0:36 / /daq/local rw - tmpfs tmpfs rw
42 22 0:37 / /mnt/my\\040share rw - cifs //host/share rw
"""


@pytest.mark.parametrize(
    ("path", "kind", "method"),
    [
        ("/home/x", "ext4", "events"),
        ("/daq/run1", "nfs4", "poll"),
        ("/daq/local/run1", "tmpfs", "events"),
        ("/mnt/my share/run", "cifs", "poll"),
    ],
)
def test_the_method_follows_the_file_system(path, kind, method):
    assert file_system_type(Path(path), mountinfo=MOUNTINFO) == kind
    assert resolve_method(Path(path), "auto", mountinfo=MOUNTINFO)[0] == method
    assert resolve_method(Path(path), "poll", mountinfo=MOUNTINFO)[0] == "poll"


# --- the watch on a real folder ----------------------------------------------------------


def _samples(number: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(number)
    i, q = rng.standard_normal((2, n), dtype=np.float32)
    return i, q


def _source(directory: Path, method: str, **options) -> Reader:
    return Reader(
        watch_source(
            directory,
            method=method,
            poll_seconds=POLL,
            settle_polls=2,
            settle_seconds=0.3,
            **options,
        )
    )


async def _write_slowly(path: Path, data: bytes, *, pieces: int = 40, pause: float = 0.005):
    """Append ``data`` in pieces, as a DAQ streaming to disk does, then close the file."""
    piece = -(-len(data) // pieces)
    with path.open("ab") as file:
        for start in range(0, len(data), piece):
            file.write(data[start : start + piece])
            file.flush()
            await asyncio.sleep(pause)


class Reader:
    """Reads a source with timeouts, without cancelling it (that would end the generator)."""

    def __init__(self, source) -> None:
        self.source = source
        self._pending: asyncio.Future | None = None

    async def next(self, timeout: float):
        if self._pending is None:
            self._pending = asyncio.ensure_future(anext(self.source))
        done, _ = await asyncio.wait({self._pending}, timeout=timeout)
        if not done:
            raise TimeoutError
        pending, self._pending = self._pending, None
        return pending.result()

    async def nothing_more(self, seconds: float) -> None:
        with pytest.raises(TimeoutError):
            await self.next(seconds)

    async def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await self._pending
        await self.source.aclose()


@pytest.mark.parametrize("method", METHODS)
async def test_a_pair_written_in_pieces_is_taken_once_complete_and_once(tmp_path, method):
    i, q = _samples(1, 3072 * 20)
    i_path, q_path = pair_paths(tmp_path, 1)
    source = _source(tmp_path, method)
    closed_at = 0.0

    async def daq() -> None:
        nonlocal closed_at
        await _write_slowly(i_path, i.tobytes())
        await _write_slowly(q_path, q.tobytes())
        closed_at = time.monotonic()

    writing = asyncio.create_task(daq())
    try:
        record = await source.next(10)
        taken_at = time.monotonic()
        assert writing.done()  # not taken before the DAQ finished the pair
        assert isinstance(record, DaqRecord)
        assert record.number == 1
        np.testing.assert_array_equal(record.i, i)
        np.testing.assert_array_equal(record.q, q)
        assert record.daq_time == max(p.stat().st_mtime for p in (i_path, q_path))
        if method == "events":  # announced by its close, not found by a timer
            assert taken_at - closed_at < 0.25
        await source.nothing_more(0.5)  # and never again
    finally:
        writing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writing
        await source.close()


@pytest.mark.parametrize("method", METHODS)
async def test_pairs_present_at_start_come_in_number_order_without_the_delivered_ones(
    tmp_path, method
):
    for number in (4, 2, 3, 5, 1):
        i, q = _samples(number, 256)
        i_path, q_path = pair_paths(tmp_path, number)
        i_path.write_bytes(i.tobytes())
        q_path.write_bytes(q.tobytes())

    source = _source(tmp_path, method, first_file=2, skip=lambda n: n == 4)
    records = [await source.next(5) for _ in range(3)]
    await source.nothing_more(0.5)
    await source.close()

    assert [r.number for r in records] == [2, 3, 5]


@pytest.mark.parametrize("method", METHODS)
async def test_a_pair_written_again_is_taken_again_and_an_unchanged_one_is_not(tmp_path, method):
    i_path, q_path = pair_paths(tmp_path, 0)
    source = _source(tmp_path, method)
    i, q = _samples(0, 512)
    i_path.write_bytes(i.tobytes())
    q_path.write_bytes(q.tobytes())
    first = await source.next(5)
    first_i = np.array(first.i)  # a copy: the record maps the file, which is written again

    for path in (i_path, q_path):  # opened for writing and closed, nothing written
        os.close(os.open(path, os.O_WRONLY))
    await source.nothing_more(0.5)
    i2, q2 = _samples(99, 512)  # the DAQ numbering from 0 again, in a new acquisition
    i_path.write_bytes(i2.tobytes())
    q_path.write_bytes(q2.tobytes())
    second = await source.next(5)
    await source.close()

    np.testing.assert_array_equal(first_i, i)
    np.testing.assert_array_equal(second.q, q2)


@pytest.mark.parametrize("method", METHODS)
async def test_unusable_pairs_are_reported_once_and_lone_or_empty_files_waited_for(
    tmp_path, method
):
    source = _source(tmp_path, method)
    i_path, q_path = pair_paths(tmp_path, 0)
    i_path.write_bytes(b"\0" * 400)
    q_path.write_bytes(b"\0" * 396)
    odd_i, odd_q = pair_paths(tmp_path, 1)
    odd_i.write_bytes(b"\0" * 401)
    odd_q.write_bytes(b"\0" * 401)
    pair_paths(tmp_path, 2)[0].write_bytes(b"\0" * 400)  # its partner may still come
    empty_i, empty_q = pair_paths(tmp_path, 3)
    empty_i.touch()
    empty_q.touch()

    items = [await source.next(5) for _ in range(2)]
    await source.nothing_more(0.8)
    pair_paths(tmp_path, 2)[1].write_bytes(b"\0" * 400)
    empty_i.write_bytes(b"\0" * 64)
    empty_q.write_bytes(b"\0" * 64)
    later = [await source.next(5) for _ in range(2)]
    await source.close()

    assert [type(item) for item in items] == [BadPair, BadPair]
    reasons = {item.error.path.name: item.error.reason for item in items}
    assert "complete with 400 bytes of I but 396 of Q" in reasons["duck_i_00000.dat"]
    assert "not a whole number of float32 samples" in reasons["duck_i_00001.dat"]
    assert sorted(item.number for item in later) == [2, 3]


async def test_a_file_renamed_into_the_folder_is_complete(tmp_path):
    source = _source(tmp_path, "events")
    staging = tmp_path / "staging"
    staging.mkdir()
    i, q = _samples(6, 1024)
    i_path, q_path = pair_paths(tmp_path, 6)
    (staging / "i").write_bytes(i.tobytes())
    (staging / "q").write_bytes(q.tobytes())
    await asyncio.sleep(0.1)
    (staging / "i").rename(i_path)
    (staging / "q").rename(q_path)

    record = await source.next(5)
    await source.close()

    np.testing.assert_array_equal(record.q, q)


async def test_a_poll_looks_at_a_few_files_however_many_the_folder_holds(tmp_path, monkeypatch):
    # 20,000 delivered pairs (sparse files: their content is not read) and one new pair
    # at a time: each poll stats only the pairs being written, the next numbers and the
    # lowest, and lists the folder only at the start.
    for number in range(20_000):
        for path in pair_paths(tmp_path, number):
            with path.open("wb") as file:
                file.truncate(3072 * 4)
    looked: list[int] = []
    listings = 0
    real_of, real_scan = PairLook.of, watch.scan_directory

    def counting_of(pair):
        looked.append(pair.number)
        return real_of(pair)

    def counting_scan(directory):
        nonlocal listings
        listings += 1
        return real_scan(directory)

    monkeypatch.setattr(PairLook, "of", staticmethod(counting_of))
    monkeypatch.setattr(watch, "scan_directory", counting_scan)
    source = _source(tmp_path, "poll", skip=lambda n: n < 20_000)
    try:
        for number in range(20_000, 20_003):
            i, q = _samples(number, 3072)
            i_path, q_path = pair_paths(tmp_path, number)
            i_path.write_bytes(i.tobytes())
            q_path.write_bytes(q.tobytes())
            record = await source.next(5)
            assert record.number == number
    finally:
        await source.close()

    polls = max(1, len(looked) // 4)
    assert listings == 1
    assert len(set(looked)) <= 10  # the lowest, and a few numbers around the new ones
    assert len(looked) <= 5 * polls


async def test_events_need_no_listing_after_the_start(tmp_path, monkeypatch):
    for number in range(200):
        for path in pair_paths(tmp_path, number):
            path.write_bytes(b"\0" * 64)
    listings = 0
    real_scan = watch.scan_directory

    def counting_scan(directory):
        nonlocal listings
        listings += 1
        return real_scan(directory)

    monkeypatch.setattr(watch, "scan_directory", counting_scan)
    source = _source(tmp_path, "events", skip=lambda n: n < 200)
    try:
        await source.nothing_more(0.3)
        for number in range(200, 205):
            i_path, q_path = pair_paths(tmp_path, number)
            i_path.write_bytes(b"\0" * 64)
            q_path.write_bytes(b"\0" * 64)
            assert (await source.next(5)).number == number
    finally:
        await source.close()

    assert listings == 1
