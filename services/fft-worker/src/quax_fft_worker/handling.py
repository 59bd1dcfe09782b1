"""What an FFT worker does with each raw chunk, without Faust.

:class:`ChunkHandler` decodes a chunk, runs the spectrum kernel and sends the partial; a
chunk it cannot use goes to the dead-letter topic once, with the reason, and a skip notice
tells the aggregator its slices will not come. Its kernels, outputs and metrics are passed
in: the Faust agent only feeds it (quax_fft_worker.agents), the tests call it directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from quax_fft_worker.metrics import WorkerMetrics
from quaxspec.deadletter import Rejecter, Send, Source
from quaxspec.limits import MessageTooLargeError, ensure_fits
from quaxspec.messages import MessageDecodeError, Partial, RawChunk, SkippedChunk
from quaxspec.spectrum import NonFiniteSamplesError, SpectrumKernel

__all__ = ["ChunkHandler", "Outputs"]

log = structlog.get_logger("quax.fft-worker")


@dataclass(frozen=True, slots=True)
class Outputs:
    """The topics a worker writes."""

    partials: Send
    dead: Send


class ChunkHandler:
    """Transform raw chunks into partials."""

    def __init__(
        self,
        *,
        kernels: Callable[[int, float], SpectrumKernel],
        outputs: Outputs,
        metrics: WorkerMetrics,
        max_message_bytes: int,
    ) -> None:
        self._kernels = kernels
        self._outputs = outputs
        self._metrics = metrics
        self._max_bytes = max_message_bytes
        self._rejecter = Rejecter(
            send=outputs.dead,
            service="fft-worker",
            known=[
                (MessageDecodeError, "undecodable"),
                (NonFiniteSamplesError, "non-finite"),
                (MessageTooLargeError, "too-large"),
            ],
            counter=metrics.rejects,
            unforeseen="A raw chunk could not be transformed.",
        )

    async def handle(self, key: bytes | None, value: bytes | None, source: Source) -> None:
        """Transform one raw chunk into a partial, or dead-letter it with the reason.

        Whatever goes wrong with one record (it does not decode, its samples are not
        finite, its partial would not fit a message, or anything unforeseen) sends it to
        the dead-letter topic once and the stream goes on; sending to Kafka is not guarded
        (a broker problem is not the record's fault).
        """
        metrics = self._metrics
        chunk = None
        try:
            if value is None:
                raise MessageDecodeError("a record without a value")
            chunk = RawChunk.from_bytes(value)
            started = time.perf_counter()
            moments = self._kernels(chunk.n_fft, chunk.fs).moments(chunk.i, chunk.q)
            metrics.kernel_seconds.observe(time.perf_counter() - started)
            partial = ensure_fits(
                Partial.of_chunk(chunk, moments).to_bytes(),
                limit=self._max_bytes,
                what=f"the partial of file {chunk.file_number} chunk {chunk.first_slice}",
            )
        except Exception as error:
            await self._reject(key, value, source, error, chunk)
            return
        await self._outputs.partials(key=chunk.run_id.encode(), value=partial)
        metrics.chunks.inc()
        metrics.slices.inc(chunk.n_slices)
        metrics.input_bytes.inc(chunk.i.nbytes + chunk.q.nbytes)

    async def _reject(
        self,
        key: bytes | None,
        value: bytes | None,
        source: Source,
        error: Exception,
        chunk: RawChunk | None,
    ) -> None:
        await self._rejecter(key=key, value=value, source=source, error=error)
        if chunk is not None:  # tell the aggregator these slices will not come
            notice = SkippedChunk.of_chunk(chunk)
            await self._outputs.partials(key=chunk.run_id.encode(), value=notice.to_bytes())
