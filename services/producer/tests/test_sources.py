"""The directory and synthetic sources: order, bad pairs reported and skipped, limits."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from quax_producer.items import BadPair
from quax_producer.settings import ProducerSettings
from quax_producer.sources import directory_source, open_source, synthetic_source
from quaxspec.daq import DaqRecord, pair_paths, write_pair
from quaxspec.synthetic import SyntheticDaq


def _write(directory, number, n=64):
    rng = np.random.default_rng(number)
    i, q = rng.standard_normal((2, n), dtype=np.float32)
    write_pair(directory, number, i, q)
    return i, q


async def _collect(source):
    return [item async for item in source]


async def test_directory_pairs_come_in_file_number_order_and_bad_ones_are_skipped(tmp_path):
    for number in (12, 3, 7, 10):
        _write(tmp_path, number)
    pair_paths(tmp_path, 5)[0].write_bytes(b"\0" * 256)  # I without Q
    i, q = pair_paths(tmp_path, 8)
    i.write_bytes(b"\0" * 256)
    q.write_bytes(b"\0" * 128)  # mismatched lengths
    (tmp_path / "notes.txt").write_text("ignored")

    items = await _collect(directory_source(tmp_path))

    records = [item for item in items if isinstance(item, DaqRecord)]
    bad = {item.error.path.name: item for item in items if isinstance(item, BadPair)}
    assert [r.number for r in records] == [3, 7, 10, 12]
    assert set(bad) == {"duck_i_00005.dat", "duck_i_00008.dat"}
    assert bad["duck_i_00005.dat"].reason == "unpaired"
    assert bad["duck_i_00008.dat"].reason == "invalid"
    assert "64 samples" in bad["duck_i_00008.dat"].error.reason


async def test_directory_records_hold_the_files_samples_and_mtime(tmp_path):
    i, q = _write(tmp_path, 4)

    [record] = await _collect(directory_source(tmp_path))

    np.testing.assert_array_equal(record.i, i)
    np.testing.assert_array_equal(record.q, q)
    assert record.daq_time == max(p.stat().st_mtime for p in pair_paths(tmp_path, 4))


async def test_directory_first_file_and_limit(tmp_path):
    for number in range(6):
        _write(tmp_path, number)

    items = await _collect(directory_source(tmp_path, first_file=2, limit=3))

    assert [item.number for item in items] == [2, 3, 4]


async def test_synthetic_records_match_the_synthetic_daq_and_carry_a_recent_time():
    daq = SyntheticDaq(seed=3, n_samples=3072 * 4)
    before = time.time()

    records = await _collect(synthetic_source(daq, first_file=5, limit=3))

    assert [r.number for r in records] == [5, 6, 7]
    for record in records:
        i, q = daq.samples(record.number)
        np.testing.assert_array_equal(record.i, i)
        np.testing.assert_array_equal(record.q, q)
        assert before <= record.daq_time <= time.time()


async def test_synthetic_source_without_limit_goes_on_and_closes_cleanly():
    source = synthetic_source(SyntheticDaq(seed=0, n_samples=1024))

    numbers = [(await anext(source)).number for _ in range(5)]
    await source.aclose()

    assert numbers == [0, 1, 2, 3, 4]


async def test_synthetic_generation_does_not_block_the_event_loop():
    ticks = 0

    async def tick():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    await _collect(synthetic_source(SyntheticDaq(n_samples=2**20), limit=2))
    ticker.cancel()

    assert ticks > 5


async def test_open_source_builds_the_configured_synthetic_daq_with_a_line():
    settings = ProducerSettings(
        seed=2, samples_per_file=4096, files=1, line_strength=5.0, line_frequency_hz=1e5
    )
    source = open_source(settings)

    [record] = await _collect(source.items(skip=lambda n: False))

    daq_i, _ = SyntheticDaq(seed=2, n_samples=4096).samples(0)
    assert record.n_samples == 4096
    assert not np.array_equal(record.i, daq_i)  # the line changes the realisation
    assert source.fingerprint_of(0) == record.fingerprint()  # regenerated identically
    assert not source.live


async def test_resumed_sources_skip_delivered_files_and_keep_their_range(tmp_path):
    for number in range(6):
        _write(tmp_path, number)
    delivered = {1, 2}.__contains__

    replay = await _collect(directory_source(tmp_path, limit=4, skip=delivered))
    synthetic = await _collect(
        synthetic_source(SyntheticDaq(n_samples=64), first_file=1, limit=4, skip=delivered)
    )

    assert [r.number for r in replay] == [0, 3]  # 0 … 3, as the first replay had
    assert [r.number for r in synthetic] == [3, 4]  # 1 … 4


def test_a_directory_source_fingerprints_what_it_has_and_dates_its_first_file(tmp_path):
    _write(tmp_path, 3)
    _write(tmp_path, 5)
    source = open_source(ProducerSettings(source="directory", directory=tmp_path))

    i_path, q_path = pair_paths(tmp_path, 3)
    assert source.fingerprint_of(4) is None
    assert source.fingerprint_of(3) == source.fingerprint_of(3) != source.fingerprint_of(5)
    assert source.first_time() == max(i_path.stat().st_mtime, q_path.stat().st_mtime)
    assert source.live is False
