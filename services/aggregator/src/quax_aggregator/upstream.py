"""Whether the pipeline upstream of the aggregator is idle: nothing left that could hold a chunk.

Asked before letting a file's timeout run on (quaxspec.timeouts): the FFT workers' consumer
group has read every raw chunk there is (its committed offsets reach the end of quax.raw),
and the aggregator has handled every partial of its partitions. If the broker cannot be
asked, the answer is no.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from quaxspec.settings import KafkaSettings
from quaxspec.topics import RAW

__all__ = ["UpstreamWatch"]

log = structlog.get_logger("quax.aggregator")

#: A pause of file timeouts longer than this is logged (shorter ones are the normal rhythm).
_LONG_PAUSE_SECONDS = 30.0


class UpstreamWatch:
    """Measures the raw-topic lag of the FFT workers' group (clients made on first use)."""

    def __init__(self, kafka: KafkaSettings, *, group: str) -> None:
        self._kafka = kafka
        self._group = group
        self._topic = kafka.topic(RAW)
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._paused_since: float | None = None
        self._said_paused = False

    async def raw_lag(self) -> int:
        """Raw chunks the FFT workers have not yet committed (0 when no group is named)."""
        if not self._group:
            return 0
        admin, consumer = self._admin, self._consumer
        if admin is None or consumer is None:
            admin, consumer = await self._connect()
        if not self._partitions:
            [described] = await admin.describe_topics([self._topic])
            numbers = sorted(p["partition"] for p in described["partitions"])
            if not numbers:
                raise RuntimeError(f"topic {self._topic} has no partitions")
            self._partitions = [TopicPartition(self._topic, p) for p in numbers]
        partitions = self._partitions
        ends = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(self._group, partitions=partitions)
        # A partition the group never committed has offset −1: nothing of it was read.
        done = {tp: max(0, meta.offset) for tp, meta in committed.items()}
        return sum(max(0, ends[tp] - done.get(tp, 0)) for tp in partitions)

    async def _connect(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        await self.close()
        options = self._kafka.client_options()
        admin = self._admin = AIOKafkaAdminClient(**options)
        consumer = self._consumer = AIOKafkaConsumer(**options, group_id=None)
        await admin.start()
        await consumer.start()
        return admin, consumer

    async def idle(self, own_lag: Callable[[], Awaitable[dict[int, int]]]) -> tuple[bool, str]:
        """Whether nothing upstream may still hold a chunk, and why not (for the log)."""
        try:
            raw = await self.raw_lag()
            partials = sum((await own_lag()).values())
        except Exception as error:  # the broker is away or the group is moving: not idle
            await self.close()
            idle, why = False, f"the lag could not be measured ({error!r})"
        else:
            idle = raw == 0 and partials == 0
            why = f"{raw} raw chunks not yet transformed, {partials} partials not yet merged"
        self._say(idle, why)
        return idle, why

    def _say(self, idle: bool, why: str) -> None:
        # Short pauses are the normal rhythm of a busy pipeline; only long ones are news.
        now = time.monotonic()
        if not idle:
            self._paused_since = self._paused_since or now
            paused = now - self._paused_since
            if paused >= _LONG_PAUSE_SECONDS and not self._said_paused:
                self._said_paused = True
                log.warning(
                    "File timeouts are paused: data may be waiting upstream.",
                    why=why,
                    paused_s=round(paused),
                )
            return
        if self._said_paused and self._paused_since is not None:
            log.info(
                "File timeouts run again: nothing is waiting upstream.",
                paused_s=round(now - self._paused_since),
            )
        self._paused_since, self._said_paused = None, False

    async def close(self) -> None:
        """Stop the clients."""
        admin, consumer = self._admin, self._consumer
        self._admin = self._consumer = None
        try:
            if admin is not None:
                await admin.close()
            if consumer is not None:
                await consumer.stop()
        except Exception as error:  # already broken: nothing more to release
            log.debug("A lag client did not close cleanly.", error=repr(error))
