"""A file's delivery: chunks cover every slice once, go out as slices arrive, survive failures.

The Kafka client is a stand-in that records what it is given and fails when told to; the
same paths run against the real broker in test_stream_kafka.py and the pipeline tests.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aiokafka.errors import KafkaTimeoutError
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from quax_producer.chunking import ChunkPlan
from quax_producer.delivering import FileDelivery, Slices
from quax_producer.metrics import Metrics
from quax_producer.settings import ProducerSettings
from quaxspec.daq import DaqRecord, PairDigest
from quaxspec.messages import RawChunk


class Producer:
    """Stands for AIOKafkaProducer: records each send; its deliveries fail while ``failing``."""

    def __init__(self, log: list[tuple[int, bytes]], *, failing: int = 0) -> None:
        self.log = log
        self.failing = failing

    async def send(self, topic, value, *, key, partition):
        delivery = asyncio.get_running_loop().create_future()
        if self.failing > 0:
            self.failing -= 1
            delivery.set_exception(KafkaTimeoutError("batch expired"))
        else:
            self.log.append((partition, value))
            delivery.set_result(None)
        return delivery


class Link:
    """Stands for KafkaLink: a recovery makes a new client, which delivers."""

    raw_topic = "quax.raw"

    def __init__(self, *, failing: int = 0) -> None:
        self.partitions = [0, 1, 2, 3]
        self.delivery_timeout = 5.0
        self.log: list[tuple[int, bytes]] = []
        self.producer = Producer(self.log, failing=failing)
        self.recoveries = 0

    async def recover(self, error: BaseException) -> None:
        self.recoveries += 1
        self.producer = Producer(self.log)


def _record(n_samples: int, seed: int = 0) -> DaqRecord:
    rng = np.random.default_rng(seed)
    i, q = rng.standard_normal((2, n_samples), dtype=np.float32)
    return DaqRecord(number=9, i=i, q=q, daq_time=1.79e9, source="test")


def _delivery(
    link: Link,
    record: DaqRecord,
    *,
    n_fft: int,
    per_chunk: int,
    total: int,
    digest: PairDigest | None = None,
):
    metrics = Metrics(registry=CollectorRegistry())
    plan = ChunkPlan(run_id="run-1", n_fft=n_fft, slices_per_chunk=per_chunk, fs=2e6, f_lo=5e9)
    reads: list[tuple[int, int]] = []

    def read(first: int, count: int) -> Slices:
        reads.append((first, count))
        i, q = record.slices(n_fft, first, first + count)
        return Slices(i=i, q=q, daq_time=record.daq_time + first)

    delivery = FileDelivery(
        link=link,  # type: ignore[arg-type]
        metrics=metrics,
        plan=plan,
        number=record.number,
        total_slices=total,
        read=read,
        max_in_flight=4,
        digest=digest,
    )
    return delivery, metrics, reads


def _chunks(link: Link) -> list[tuple[int, RawChunk]]:
    return [(partition, RawChunk.from_bytes(value)) for partition, value in link.log]


@settings(max_examples=60, deadline=None)
@given(
    n_fft=st.integers(2, 64),
    n_slices=st.integers(1, 120),
    remainder=st.integers(0, 63),
    per_chunk=st.integers(1, 40),
)
def test_the_chunks_of_a_complete_file_cover_every_slice_once_in_order(
    n_fft, n_slices, remainder, per_chunk
):
    record = _record(n_fft * n_slices + remainder % n_fft)
    link = Link()
    delivery, metrics, _ = _delivery(link, record, n_fft=n_fft, per_chunk=per_chunk, total=n_slices)

    asyncio.run(delivery.finish())

    chunks = [chunk for _, chunk in _chunks(link)]
    assert [c.first_slice for c in chunks] == list(range(0, n_slices, per_chunk))
    assert {(c.run_id, c.file_number, c.total_slices, c.n_fft) for c in chunks} == {
        ("run-1", 9, n_slices, n_fft)
    }
    whole = n_fft * n_slices
    np.testing.assert_array_equal(np.concatenate([c.i for c in chunks]).ravel(), record.i[:whole])
    np.testing.assert_array_equal(np.concatenate([c.q for c in chunks]).ravel(), record.q[:whole])
    assert delivery.done
    assert metrics.value("quax_producer_slices_total") == n_slices
    assert metrics.value("quax_producer_chunks_total") == len(chunks)


async def test_a_file_being_written_goes_out_in_whole_chunks_as_its_slices_arrive():
    record = _record(3072 * 100)
    link, digest = Link(), PairDigest()
    delivery, _, reads = _delivery(link, record, n_fft=3072, per_chunk=32, total=100, digest=digest)

    await delivery.send_available(31)  # not one whole chunk yet
    assert link.log == []
    await delivery.send_available(70)
    assert reads == [(0, 32), (32, 32)]
    await delivery.send_available(99)
    assert reads[-1] == (64, 32)
    assert not delivery.done
    await delivery.finish()  # the last, short chunk once the file is complete

    chunks = [chunk for _, chunk in _chunks(link)]
    assert [(c.first_slice, c.n_slices) for c in chunks] == [(0, 32), (32, 32), (64, 32), (96, 4)]
    assert [c.daq_time for c in chunks] == [record.daq_time + f for f in (0, 32, 64, 96)]
    assert delivery.done
    # What was sent, in order, and the samples after the last whole slice: the file.
    digest.update(record.i[100 * 3072 :], record.q[100 * 3072 :])
    assert digest.hexdigest() == record.fingerprint()


async def test_chunks_kafka_did_not_acknowledge_are_sent_again_and_counted_once():
    record = _record(3072 * 100)
    link = Link(failing=3)  # the first three deliveries fail (a broker going away)
    delivery, metrics, _ = _delivery(link, record, n_fft=3072, per_chunk=10, total=100)

    await delivery.finish()

    firsts = [chunk.first_slice for _, chunk in _chunks(link)]
    assert sorted(set(firsts)) == list(range(0, 100, 10))
    assert link.recoveries >= 1
    assert delivery.done
    assert metrics.value("quax_producer_slices_total") == 100  # each slice counted once
    assert metrics.value("quax_producer_chunks_total") == 10


def test_default_chunks_stay_well_under_one_mebibyte():
    defaults = ProducerSettings()
    record = _record(defaults.n_fft * defaults.slices_per_chunk)
    link = Link()
    delivery, _, _ = _delivery(
        link,
        record,
        n_fft=defaults.n_fft,
        per_chunk=defaults.slices_per_chunk,
        total=defaults.slices_per_chunk,
    )
    asyncio.run(delivery.finish())

    [(_, value)] = link.log
    assert len(value) < 800_000


@pytest.mark.parametrize("partitions", [1, 4])
async def test_a_files_chunks_are_spread_over_the_partitions(partitions):
    record = _record(3072 * 8 * partitions)
    link = Link()
    link.partitions = list(range(partitions))
    delivery, _, _ = _delivery(link, record, n_fft=3072, per_chunk=8, total=8 * partitions)

    await delivery.finish()

    assert sorted(p for p, _ in link.log) == list(range(partitions))
