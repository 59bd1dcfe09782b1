"""The producer against the real local broker: synthetic files in, every slice out exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter

import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from quax_producer.metrics import Metrics
from quax_producer.settings import ProducerSettings
from quax_producer.stream import MissingTopicError, RunRefusedError, stream
from quaxspec.daq import pair_paths, write_pair
from quaxspec.messages import MessageDecodeError, RawChunk
from quaxspec.progress import RunProgress
from quaxspec.settings import KafkaSettings
from quaxspec.synthetic import SyntheticDaq
from quaxspec.topics import PROGRESS, RAW

pytestmark = pytest.mark.kafka

N_FFT = 3072
SLICES = 100
SAMPLES = N_FFT * SLICES + 7  # 7 samples per channel are dropped from each file


async def _read_all(kafka_settings: KafkaSettings, count: int) -> list[tuple[int, bytes, bytes]]:
    topic = kafka_settings.topic(RAW)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_settings.bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=kafka_settings.max_message_bytes,
        fetch_max_bytes=2 * kafka_settings.max_message_bytes,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(RAW.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        received = []
        async with asyncio.timeout(30):
            while len(received) < count:
                batches = await consumer.getmany(timeout_ms=500)
                for tp, records in batches.items():
                    received += [(tp.partition, r.key, r.value) for r in records]
        extra = await consumer.getmany(timeout_ms=500)  # nothing more than expected
        assert not any(extra.values())
        return received
    finally:
        await consumer.stop()


async def _topics(kafka) -> KafkaSettings:
    """Topics of this test's own (a unique prefix), so tests do not read each other's chunks."""
    prefix = f"test-{uuid.uuid4().hex[:8]}."
    await asyncio.to_thread(kafka.create_topics, prefix)
    return KafkaSettings(bootstrap_servers=kafka.bootstrap, topic_prefix=prefix)


async def test_two_synthetic_files_arrive_whole_exactly_once(kafka):
    started = time.time()
    settings = ProducerSettings(
        source="synthetic",
        seed=11,
        samples_per_file=SAMPLES,
        n_fft=N_FFT,
        slices_per_chunk=32,
        files=2,
        first_file=3,
        as_fast_as_possible=True,
        kafka=await _topics(kafka),
    )
    metrics = Metrics(registry=CollectorRegistry())

    await stream(settings, metrics=metrics)

    received = await _read_all(settings.kafka, count=8)  # 4 chunks (32+32+32+4) per file
    chunks = [(partition, key, RawChunk.from_bytes(value)) for partition, key, value in received]
    daq = SyntheticDaq(seed=11, n_samples=SAMPLES, n_fft=N_FFT)
    for number in (3, 4):
        mine = sorted(
            (c for _, _, c in chunks if c.file_number == number), key=lambda c: c.first_slice
        )
        assert [c.first_slice for c in mine] == [0, 32, 64, 96]
        assert {c.total_slices for c in mine} == {SLICES}
        assert {(c.n_fft, c.fs, c.f_lo) for c in mine} == {(N_FFT, 2e6, 0)}
        [run_id] = {c.run_id for c in mine}
        assert run_id.startswith("synthetic-11-")  # one run per acquisition, named by time
        i, q = daq.samples(number)
        np.testing.assert_array_equal(
            np.concatenate([c.i for c in mine]).ravel(), i[: N_FFT * SLICES]
        )
        np.testing.assert_array_equal(
            np.concatenate([c.q for c in mine]).ravel(), q[: N_FFT * SLICES]
        )
        keys = {key for _, key, c in chunks if c.file_number == number}
        assert keys == {f"{run_id}/{number:05d}".encode()}
        partitions = Counter(p for p, _, c in chunks if c.file_number == number)
        assert len(partitions) > 1  # every worker gets a share of every file
        # The DAQ time of a synthetic file is when the schedule took it: latency means something.
        assert len({c.daq_time for c in mine}) == 1
        assert started <= mine[0].daq_time <= time.time()
    assert metrics.value("quax_producer_files_total") == 2
    assert metrics.value("quax_producer_chunks_total") == 8
    assert metrics.value("quax_producer_slices_total") == 2 * SLICES
    assert metrics.value("quax_producer_bytes_total") == 2 * SLICES * N_FFT * 8
    assert metrics.value("quax_producer_dropped_samples_total") == 2 * 7
    assert metrics.value("quax_producer_send_seconds_count") == 8
    assert metrics.value("quax_producer_bad_pairs_total", reason="no_slices") == 0


async def test_bad_pairs_of_a_directory_are_counted_and_skipped_while_good_ones_go_through(
    kafka, tmp_path
):
    rng = np.random.default_rng(0)
    for number in (1, 4):
        i, q = rng.standard_normal((2, 3072 * 3), dtype=np.float32)
        write_pair(tmp_path, number, i, q)
    lone, _ = pair_paths(tmp_path, 2)
    lone.write_bytes(b"\0" * 4096)
    i_path, q_path = pair_paths(tmp_path, 3)
    i_path.write_bytes(b"\0" * 4096)
    q_path.write_bytes(b"\0" * 2048)
    write_pair(tmp_path, 5, *rng.standard_normal((2, 100), dtype=np.float32))  # < one slice
    settings = ProducerSettings(
        source="directory",
        directory=tmp_path,
        run_id="dir-run",
        as_fast_as_possible=True,
        kafka=await _topics(kafka),
    )
    metrics = Metrics(registry=CollectorRegistry())

    await stream(settings, metrics=metrics)

    received = await _read_all(settings.kafka, count=2)
    assert sorted(RawChunk.from_bytes(value).file_number for _, _, value in received) == [1, 4]
    assert metrics.value("quax_producer_files_total") == 2
    for reason in ("unpaired", "invalid", "no_slices"):
        assert metrics.value("quax_producer_bad_pairs_total", reason=reason) == 1, reason


async def test_a_stop_request_ends_a_quiet_watch_promptly(kafka, tmp_path):
    settings = ProducerSettings(
        source="watch", directory=tmp_path, watch_poll_seconds=0.05, kafka=await _topics(kafka)
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.5, stop.set)

    async with asyncio.timeout(10):
        await stream(settings, metrics=Metrics(registry=CollectorRegistry()), stop=stop)


async def test_a_missing_topic_is_a_clear_error_at_start(kafka):
    settings = ProducerSettings(
        kafka=KafkaSettings(bootstrap_servers=kafka.bootstrap, topic_prefix="absent."), files=1
    )

    with pytest.raises(MissingTopicError, match=r"topic absent\.quax\.(raw|progress) does not"):
        await stream(settings, metrics=Metrics(registry=CollectorRegistry()))


async def _progress_records(kafka_settings: KafkaSettings) -> dict[bytes, RunProgress]:
    topic = kafka_settings.topic(PROGRESS)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        records: dict[bytes, RunProgress] = {}
        while await consumer.position(partition) < end:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for record in batch:
                    with contextlib.suppress(MessageDecodeError):
                        progress = RunProgress.from_bytes(record.value)
                        records[progress.key] = progress
        return records
    finally:
        await consumer.stop()


async def _send_garbage(kafka_settings: KafkaSettings) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        topic = kafka_settings.topic(PROGRESS)
        await producer.send_and_wait(topic, b'{"schema": "quax.run-progress/1"', key=b"x")
        await producer.send_and_wait(topic, None, key=b"never-there")  # a tombstone
    finally:
        await producer.stop()


async def test_a_restarted_replay_sends_only_what_it_had_not_delivered(kafka):
    kafka_settings = await _topics(kafka)
    common = {
        "source": "synthetic",
        "seed": 5,
        "samples_per_file": SAMPLES,
        "n_fft": N_FFT,
        "as_fast_as_possible": True,
        "kafka": kafka_settings,
    }
    first = Metrics(registry=CollectorRegistry())
    await stream(ProducerSettings(files=3, **common), metrics=first)
    [run] = (await _progress_records(kafka_settings)).values()
    await _send_garbage(kafka_settings)  # a poisonous record: ignored, with a warning
    again = Metrics(registry=CollectorRegistry())

    await stream(ProducerSettings(files=5, **common), metrics=again)  # two more files
    await stream(ProducerSettings(files=5, **common), metrics=again)  # nothing left

    received = await _read_all(kafka_settings, count=5 * 4)
    numbers = Counter(RawChunk.from_bytes(value).file_number for _, _, value in received)
    assert numbers == {n: 4 for n in range(5)}  # every file's 4 chunks, once
    assert {RawChunk.from_bytes(value).run_id for _, _, value in received} == {run.run_id}
    [resumed] = (
        p for p in (await _progress_records(kafka_settings)).values() if p.run_id == run.run_id
    )
    assert resumed.run_id == run.run_id
    assert resumed.files.ranges == [(0, 5)]
    assert resumed.finished
    assert (first.value("quax_producer_files_total"), again.value("quax_producer_files_total")) == (
        3,
        2,
    )


async def test_a_named_run_with_another_configuration_is_refused_naming_both(kafka):
    kafka_settings = await _topics(kafka)
    common = {"source": "synthetic", "run_id": "run42", "files": 1, "kafka": kafka_settings}
    common |= {"samples_per_file": SAMPLES, "as_fast_as_possible": True}
    await stream(
        ProducerSettings(n_fft=N_FFT, **common), metrics=Metrics(registry=CollectorRegistry())
    )

    with pytest.raises(RunRefusedError) as refused:
        await stream(
            ProducerSettings(n_fft=2048, **common), metrics=Metrics(registry=CollectorRegistry())
        )

    assert "run run42 was started with n_fft 3072" in str(refused.value)
    assert "this producer has n_fft 2048" in str(refused.value)


async def test_shards_feed_one_run_each_file_once_and_resume_from_their_own_records(kafka):
    kafka_settings = await _topics(kafka)
    common = {"source": "synthetic", "seed": 6, "run_id": "sharded", "kafka": kafka_settings}
    common |= {"samples_per_file": SAMPLES, "n_fft": N_FFT, "as_fast_as_possible": True}
    first = [Metrics(registry=CollectorRegistry()) for _ in range(2)]
    await asyncio.gather(
        *(
            stream(ProducerSettings(shard=f"{k}/2", files=5, **common), metrics=first[k - 1])
            for k in (1, 2)
        )
    )
    again = [Metrics(registry=CollectorRegistry()) for _ in range(2)]
    for k in (1, 2):  # two more files: 6 is shard 1's, 5 is shard 2's
        await stream(ProducerSettings(shard=f"{k}/2", files=7, **common), metrics=again[k - 1])

    received = await _read_all(kafka_settings, count=7 * 4)
    numbers = Counter(RawChunk.from_bytes(value).file_number for _, _, value in received)
    assert numbers == {n: 4 for n in range(7)}  # every file's 4 chunks, once
    records = sorted((await _progress_records(kafka_settings)).values(), key=lambda p: p.key)
    assert [(str(p.shard), p.files.ranges, p.finished) for p in records] == [
        ("1/2", [(0, 1), (2, 3), (4, 5), (6, 7)], True),
        ("2/2", [(1, 2), (3, 4), (5, 6)], True),
    ]
    sent = [m.value("quax_producer_files_total") for m in (*first, *again)]
    assert sent == [3, 2, 1, 1]

    # Feeding the run another way would send its files again: refused, saying why.
    for other, words in [({}, "fed as shard ./2; this producer would feed the whole run"),
                         ({"shard": "1/3"}, "the same number of shards")]:  # fmt: skip
        with pytest.raises(RunRefusedError, match=words):
            await stream(
                ProducerSettings(files=7, **(common | other)),
                metrics=Metrics(registry=CollectorRegistry()),
            )
