"""The watched directory: a pair is taken once complete and settled, exactly once."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import pytest

from quax_producer.items import BadPair
from quax_producer.watch import watch_source
from quaxspec.daq import DaqRecord, pair_paths

POLL = 0.02


def _samples(number: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(number)
    i, q = rng.standard_normal((2, n), dtype=np.float32)
    return i, q


async def _write_slowly(path, data: bytes, *, piece: int = 4096, pause: float = 0.002) -> None:
    """Append ``data`` a few KB at a time, as a DAQ streaming to disk does."""
    with path.open("ab") as file:
        for start in range(0, len(data), piece):
            file.write(data[start : start + piece])
            file.flush()
            await asyncio.sleep(pause)


async def _next(source, timeout: float):
    return await asyncio.wait_for(anext(source), timeout)


async def test_a_pair_written_slowly_is_taken_once_complete_and_exactly_once(tmp_path):
    n = 3072 * 20  # 240 KiB per file: about 60 pieces, far longer than the settle time
    i, q = _samples(1, n)
    i_path, q_path = pair_paths(tmp_path, 1)
    source = watch_source(tmp_path, poll_seconds=POLL, settle_polls=3)

    async def daq() -> None:
        await _write_slowly(i_path, i.tobytes())
        await _write_slowly(q_path, q.tobytes())

    writing = asyncio.create_task(daq())
    try:
        record = await _next(source, timeout=10)
        assert writing.done()  # not taken before the DAQ finished the pair
        assert isinstance(record, DaqRecord)
        assert record.number == 1
        np.testing.assert_array_equal(record.i, i)
        np.testing.assert_array_equal(record.q, q)
        with pytest.raises(TimeoutError):  # and never again
            await _next(source, timeout=20 * POLL)
    finally:
        writing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writing
        await source.aclose()


async def test_pairs_are_emitted_in_number_order_with_their_mtime_as_daq_time(tmp_path):
    for number in (4, 2, 3):
        i, q = _samples(number, 256)
        i_path, q_path = pair_paths(tmp_path, number)
        i_path.write_bytes(i.tobytes())
        q_path.write_bytes(q.tobytes())

    source = watch_source(tmp_path, poll_seconds=POLL, settle_polls=2, first_file=3)
    records = [await _next(source, timeout=5) for _ in range(2)]
    await source.aclose()

    assert [r.number for r in records] == [3, 4]
    i_path, q_path = pair_paths(tmp_path, 3)
    assert records[0].daq_time == max(i_path.stat().st_mtime, q_path.stat().st_mtime)


async def test_settled_pairs_of_different_sizes_are_reported_once_and_skipped(tmp_path):
    i_path, q_path = pair_paths(tmp_path, 0)
    i_path.write_bytes(b"\0" * 400)
    q_path.write_bytes(b"\0" * 396)
    odd_i, odd_q = pair_paths(tmp_path, 1)
    odd_i.write_bytes(b"\0" * 401)
    odd_q.write_bytes(b"\0" * 401)
    good_i, good_q = pair_paths(tmp_path, 2)
    good_i.write_bytes(b"\0" * 400)
    good_q.write_bytes(b"\0" * 400)
    lone, _ = pair_paths(tmp_path, 3)
    lone.write_bytes(b"\0" * 400)  # its partner may still come: not reported

    source = watch_source(tmp_path, poll_seconds=POLL, settle_polls=2)
    items = [await _next(source, timeout=5) for _ in range(3)]
    with pytest.raises(TimeoutError):
        await _next(source, timeout=10 * POLL)
    await source.aclose()

    assert [type(item) for item in items] == [BadPair, BadPair, DaqRecord]
    assert "400 bytes of I but 396 of Q" in items[0].error.reason
    assert "not a whole number of float32 samples" in items[1].error.reason
    assert items[2].number == 2


async def test_empty_files_are_waited_for_and_the_limit_ends_the_watch(tmp_path):
    i_path, q_path = pair_paths(tmp_path, 0)
    i_path.touch()
    q_path.touch()
    source = watch_source(tmp_path, poll_seconds=POLL, settle_polls=2, limit=1)
    waiting = asyncio.ensure_future(anext(source))

    await asyncio.sleep(10 * POLL)
    assert not waiting.done()  # created but not written yet: not taken, not reported
    i_path.write_bytes(b"\0" * 64)
    q_path.write_bytes(b"\0" * 64)
    record = await asyncio.wait_for(waiting, 5)
    rest = [item async for item in source]  # the limit ends the watch

    assert record.number == 0
    assert rest == []
