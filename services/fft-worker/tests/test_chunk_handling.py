"""An FFT worker's handling of raw chunks, with its outputs recorded instead of sent."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
import scipy.signal
from prometheus_client import CollectorRegistry

from quax_fft_worker.handling import ChunkHandler, Outputs
from quax_fft_worker.metrics import WorkerMetrics
from quaxspec.deadletter import Source
from quaxspec.messages import Partial, RawChunk, SkippedChunk, decode_partials_topic
from quaxspec.spectrum import SpectrumKernel

N_FFT = 256
FS = 2.0e6
SOURCE = Source("quax.raw", 1, 7)


class Worker:
    def __init__(self, *, max_message_bytes: int = 2 * 1024**2, kernels: Any = None) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = {"partials": [], "dead": []}
        self.registry = CollectorRegistry()
        made: dict[tuple[int, float], SpectrumKernel] = {}

        def kernel(n_fft: int, fs: float) -> SpectrumKernel:
            if (n_fft, fs) not in made:
                made[n_fft, fs] = SpectrumKernel(n_fft=n_fft, fs=fs, planner_effort="FFTW_ESTIMATE")
            return made[n_fft, fs]

        def sender(topic: str):
            async def send(**record: Any) -> None:
                self.sent[topic].append(record)

            return send

        self.handler = ChunkHandler(
            kernels=kernels or kernel,
            outputs=Outputs(partials=sender("partials"), dead=sender("dead")),
            metrics=WorkerMetrics(registry=self.registry),
            max_message_bytes=max_message_bytes,
        )

    def take(self, value: bytes | None) -> None:
        asyncio.run(self.handler.handle(b"run/00003", value, SOURCE))

    def rejects(self, reason: str) -> float:
        return self.registry.get_sample_value("quax_fft_rejects_total", {"reason": reason}) or 0


def _chunk(seed: int = 0, slices: int = 4, *, nan: bool = False) -> RawChunk:
    rng = np.random.default_rng(seed)
    i, q = rng.standard_normal((2, slices, N_FFT), dtype=np.float32)
    if nan:
        i[1, 5] = np.nan
    return RawChunk(
        run_id="run", file_number=3, first_slice=8, total_slices=20, n_fft=N_FFT, fs=FS,
        f_lo=9e9, daq_time=1.7e9, i=i, q=q,
    )  # fmt: skip


def test_a_chunk_becomes_a_partial_equal_to_welch_keyed_by_its_run() -> None:
    worker = Worker()
    chunk = _chunk()
    worker.take(chunk.to_bytes())
    (record,) = worker.sent["partials"]
    partial = decode_partials_topic(record["value"])
    assert isinstance(partial, Partial)
    assert record["key"] == b"run"
    assert (partial.file_number, partial.chunk_id, int(partial.moments.n)) == (3, 8, 4)
    z = (chunk.i.astype(np.complex128) + 1j * chunk.q).ravel()
    _, welch = scipy.signal.welch(
        z, FS, window="boxcar", nperseg=N_FFT, noverlap=0, detrend=False,
        return_onesided=False, scaling="density",
    )  # fmt: skip
    np.testing.assert_allclose(partial.moments.mean, np.fft.fftshift(welch), rtol=1e-5)
    assert worker.sent["dead"] == []


def _assert_dead_lettered(worker: Worker, value: bytes, reason: str, words: str) -> None:
    (letter,) = worker.sent["dead"]
    headers = dict(letter["headers"])
    assert letter["key"] == b"run/00003"
    assert letter["value"] == value[:65536]
    assert words in headers["quax-reason"].decode()
    assert headers["quax-service"] == b"fft-worker"
    assert headers["quax-source"] == b"quax.raw/1/7"
    assert worker.rejects(reason) == 1


def test_non_finite_samples_are_dead_lettered_and_the_aggregator_told() -> None:
    worker = Worker()
    value = _chunk(nan=True).to_bytes()
    worker.take(value)
    _assert_dead_lettered(worker, value, "non-finite", "a chunk of 4 slices holds NaN or infinite")
    (notice,) = worker.sent["partials"]
    skipped = decode_partials_topic(notice["value"])
    assert isinstance(skipped, SkippedChunk)
    assert (skipped.chunk_id, skipped.n_slices) == (8, 4)


def test_bytes_that_are_no_chunk_are_dead_lettered_without_a_notice() -> None:
    worker = Worker()
    worker.take(b"\x00" * 80)
    _assert_dead_lettered(worker, b"\x00" * 80, "undecodable", "magic")
    assert worker.sent["partials"] == []
    worker.take(_chunk(1).to_bytes())  # the next record is taken
    assert len(worker.sent["partials"]) == 1


def test_an_unforeseen_failure_is_dead_lettered_with_its_type() -> None:
    def broken(n_fft: int, fs: float) -> SpectrumKernel:
        raise MemoryError("cannot plan")

    worker = Worker(kernels=broken)
    value = _chunk().to_bytes()
    worker.take(value)
    _assert_dead_lettered(worker, value, "error", "MemoryError: cannot plan")
    assert isinstance(decode_partials_topic(worker.sent["partials"][0]["value"]), SkippedChunk)


def test_a_partial_too_large_for_a_message_is_dead_lettered() -> None:
    worker = Worker(max_message_bytes=4096)  # a 256-bin partial is 4,168 bytes
    value = _chunk().to_bytes()
    worker.take(value)
    _assert_dead_lettered(worker, value, "too-large", "exceeds the Kafka message limit of 4096")


@pytest.mark.parametrize("value", [None, b""])
def test_an_empty_record_is_undecodable(value: bytes | None) -> None:
    worker = Worker()
    worker.take(value)
    assert worker.rejects("undecodable") == 1
