"""One file's chunks on their way to quax.raw: sent as its slices come, kept until acknowledged.

A complete pair (a replay, or a watched pair found complete) has all its slices available
at once. A pair the DAQ is still writing has them as they reach the disk: its chunks go
out while it is written, so that when its last byte lands only its last chunk is left
to send. Either way, a delivery that Kafka does not acknowledge is sent again, chunk by
chunk, once Kafka answers (:meth:`KafkaLink.recover`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from aiokafka.errors import KafkaError
from numpy.typing import NDArray

from quax_producer.chunking import ChunkPlan, partition_for
from quax_producer.delivery import KafkaLink
from quax_producer.metrics import Metrics
from quax_producer.pacing import Pacer
from quax_producer.sending import ChunkSender
from quaxspec.daq import PairDigest
from quaxspec.messages import RawChunk

__all__ = ["FileDelivery", "SliceReader", "Slices"]


@dataclass(frozen=True, slots=True)
class Slices:
    """I and Q of consecutive slices, (count, n_fft) each, and when they were on disk."""

    i: NDArray[np.float32]
    q: NDArray[np.float32]
    daq_time: float


#: Reads ``count`` slices from slice ``first`` on.
SliceReader = Callable[[int, int], Slices]


class FileDelivery:
    """The chunks of one file: which are sent, which Kafka has acknowledged."""

    def __init__(
        self,
        *,
        link: KafkaLink,
        metrics: Metrics,
        plan: ChunkPlan,
        number: int,
        total_slices: int,
        read: SliceReader,
        max_in_flight: int,
        pacer: Pacer | None = None,
        digest: PairDigest | None = None,
    ) -> None:
        self._link = link
        self._metrics = metrics
        self._plan = plan
        self.number = number
        self.total_slices = total_slices
        self._read = read
        self._max_in_flight = max_in_flight
        self._pacer = pacer
        self._key = f"{plan.run_id}/{number:05d}".encode()
        #: First slice of the next chunk to send.
        self.sent_slices = 0
        #: Sent chunks Kafka has not acknowledged yet: first slice → slice count.
        self._unacknowledged: dict[int, int] = {}
        self._sender: ChunkSender | None = None
        #: Fed with what is sent, in order: a pair sent while written is fingerprinted as
        #: it goes (a complete pair is fingerprinted whole, beside its send).
        self._digest = digest

    @property
    def done(self) -> bool:
        """Whether every slice is sent and acknowledged."""
        return self.sent_slices == self.total_slices and not self._unacknowledged

    async def send_available(self, available: int) -> None:
        """Send every whole chunk within the first ``available`` slices not sent yet."""
        spc = self._plan.slices_per_chunk
        while self.sent_slices < self.total_slices:
            count = min(spc, self.total_slices - self.sent_slices)
            if self.sent_slices + count > available:
                return
            first = self.sent_slices
            slices = self._read(first, count)
            if self._digest is not None:
                self._digest.update(slices.i, slices.q)
            self._unacknowledged[first] = count
            self.sent_slices += count
            if self._pacer is not None:
                await self._pacer.pace(self._plan.chunk_bytes(count))
            try:
                await self._send(first, count, slices)
            except KafkaError as error:
                await self._recover(error)

    async def finish(self) -> None:
        """Send what is left and wait until Kafka has acknowledged every chunk."""
        await self.send_available(self.total_slices)
        await self.flush()

    async def flush(self) -> None:
        """Wait until Kafka has acknowledged every chunk sent so far."""
        while self._unacknowledged:
            try:
                if self._sender is None:  # acknowledgements missing: deliver those again
                    for first, count in sorted(self._unacknowledged.items()):
                        await self._send(first, count, self._read(first, count))
                sender, self._sender = self._sender, None
                if sender is not None:
                    await sender.flush()
            except KafkaError as error:
                await self._recover(error)

    async def _recover(self, error: BaseException) -> None:
        """Wait for Kafka with a new client and send every unacknowledged chunk again."""
        while True:
            if self._sender is not None:
                self._sender.abandon()
                self._sender = None
            await self._link.recover(error)
            try:
                for first, count in sorted(self._unacknowledged.items()):
                    await self._send(first, count, self._read(first, count))
                return
            except KafkaError as again:
                error = again

    async def _send(self, first: int, count: int, slices: Slices) -> None:
        if self._sender is None:
            self._sender = ChunkSender(
                producer=self._link.producer,
                topic=self._link.raw_topic,
                max_in_flight=self._max_in_flight,
                send_seconds=self._metrics.send_seconds,
                timeout=self._link.delivery_timeout,
            )
        plan = self._plan
        chunk = RawChunk(
            run_id=plan.run_id,
            file_number=self.number,
            first_slice=first,
            total_slices=self.total_slices,
            n_fft=plan.n_fft,
            fs=plan.fs,
            f_lo=plan.f_lo,
            daq_time=slices.daq_time,
            i=slices.i,
            q=slices.q,
        )
        spread = partition_for(
            file_number=self.number,
            chunk_index=first // plan.slices_per_chunk,
            partitions=len(self._link.partitions),
        )
        await self._sender.send(
            chunk.to_bytes(),
            key=self._key,
            partition=self._link.partitions[spread],
            on_delivered=functools.partial(self._acknowledged, first, count),
        )

    def _acknowledged(self, first: int, count: int) -> None:
        if self._unacknowledged.pop(first, None) is None:
            return  # a chunk sent twice (before and after a failure): counted once
        metrics = self._metrics
        metrics.chunks.inc()
        metrics.bytes.inc(self._plan.chunk_bytes(count))
        metrics.slices.inc(count)
