"""Sending to Kafka with a bounded number of unacknowledged messages (back-pressure)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from aiokafka.errors import KafkaTimeoutError
from prometheus_client import Histogram

__all__ = ["ChunkSender", "Sends", "within"]

_T = TypeVar("_T")


class Sends(Protocol):
    """A Kafka client that hands back each message's delivery as an awaitable."""

    async def send(
        self, topic: str, value: bytes, *, key: bytes, partition: int
    ) -> Awaitable[object]:
        """Hand a message to the client; await the result for Kafka's acknowledgement."""
        ...


async def within(seconds: float | None, awaitable: Awaitable[_T], *, what: str) -> _T:
    """``awaitable``'s result, or :class:`KafkaTimeoutError` after ``seconds``.

    The Kafka client can wait on a broker that is away for as long as it is away, with
    neither a result nor an error; this deadline makes that a failure the producer handles.
    What is awaited is shielded: the client's own futures are never cancelled from here.
    """
    try:
        return await asyncio.wait_for(asyncio.shield(awaitable), seconds)
    except TimeoutError:
        raise KafkaTimeoutError(f"{what}: no answer from Kafka within {seconds:g} s") from None


class ChunkSender:
    """Hands messages to the Kafka client, waiting for the oldest when too many are unacknowledged.

    Without the bound, a slow broker would let unacknowledged chunks pile up in memory;
    with it, the producer slows down to what the broker takes. A failed delivery (after
    the client's own retries), or one not acknowledged within ``timeout`` seconds, raises
    from :meth:`send` or :meth:`flush`.
    """

    def __init__(
        self,
        *,
        producer: Sends,
        topic: str,
        max_in_flight: int,
        send_seconds: Histogram,
        timeout: float | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max in flight must be at least 1, got {max_in_flight}")
        self._producer = producer
        self._topic = topic
        self._max_in_flight = max_in_flight
        self._send_seconds = send_seconds
        self._timeout = timeout
        self._in_flight: deque[asyncio.Future[None]] = deque()

    @property
    def in_flight(self) -> int:
        """Messages handed to the client and not yet acknowledged (or failed)."""
        return len(self._in_flight)

    async def send(
        self, value: bytes, *, key: bytes, partition: int, on_delivered: Callable[[], None]
    ) -> None:
        """Send one message; ``on_delivered`` runs once Kafka has acknowledged it."""
        while len(self._in_flight) >= self._max_in_flight:
            await self._in_flight.popleft()
        started = time.perf_counter()
        # One deadline for the whole delivery: the client may wait on a broker that is away
        # both to take the chunk and to deliver it, and those waits must not add up.
        deadline = None if self._timeout is None else started + self._timeout
        delivery = await within(
            _left(deadline),
            self._producer.send(self._topic, value, key=key, partition=partition),
            what="handing a chunk to the client",
        )
        # A task rather than a done-callback: once flush has awaited it, its accounting is done.
        self._in_flight.append(
            asyncio.ensure_future(self._settle(delivery, started, deadline, on_delivered))
        )

    async def _settle(
        self,
        delivery: Awaitable[object],
        started: float,
        deadline: float | None,
        on_delivered: Callable[[], None],
    ) -> None:
        await within(_left(deadline), delivery, what="a chunk's acknowledgement")
        self._send_seconds.observe(time.perf_counter() - started)
        on_delivered()

    async def flush(self) -> None:
        """Wait for every message sent so far; raise the first delivery error."""
        try:
            while self._in_flight:
                await self._in_flight[0]
                self._in_flight.popleft()
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Forget unacknowledged messages (after an error), retrieving their outcome quietly."""
        while self._in_flight:
            self._in_flight.popleft().add_done_callback(_quiet)


def _left(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (perf_counter time); None for no deadline."""
    return None if deadline is None else max(0.0, deadline - time.perf_counter())


def _quiet(future: asyncio.Future[None]) -> None:
    # Retrieving the exception keeps asyncio from logging "exception was never retrieved".
    if not future.cancelled():
        future.exception()
