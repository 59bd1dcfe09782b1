"""An agent's input topic behind an offset guard, with the metrics of its health.

Faust can lose a fetched record around a rebalance (quaxspec.offsets): the guard sees the
gap and reads again from the record expected. Both Faust services count the rewinds and
the records retention deleted before they were handled, and export their lag.
"""

from __future__ import annotations

import faust
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from quaxspec.offsets import OffsetGuard, OffsetLedger

__all__ = ["LAG_SECONDS", "GuardedInput", "InputMetrics"]

#: How often the consumer lag is measured (seconds).
LAG_SECONDS = 5.0


class InputMetrics:
    """Rewinds, records lost to retention and lag of one service's input topic."""

    def __init__(
        self,
        *,
        namespace: str,
        topic: str,
        records: str,
        handled: str,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.rewinds = Counter(
            f"{namespace}_offset_rewinds",
            f"Times the {topic} topic was read again from a record the consumer had skipped.",
            registry=registry,
        )
        self.lost_records = Counter(
            f"{namespace}_lost_records",
            f"{records} deleted by retention before they were {handled}.",
            registry=registry,
        )
        self.lag = Gauge(
            "quax_consumer_lag",
            "Records of the input topic not yet handled, by partition.",
            ["topic", "partition"],
            registry=registry,
        )


class GuardedInput:
    """The input topic of an agent, its offset guard, and a timer that exports its lag."""

    def __init__(
        self,
        app: faust.App,
        topic: faust.TopicT,
        *,
        ledger: OffsetLedger,
        metrics: InputMetrics,
    ) -> None:
        self.topic = topic
        self.name = topic.get_topic_name()
        self.guard = OffsetGuard(
            lambda: app.consumer,
            ledger,
            topic=self.name,
            on_rewind=metrics.rewinds.inc,
            on_loss=metrics.lost_records.inc,
        )
        self._lag = metrics.lag
        app.timer(interval=LAG_SECONDS)(self.export_lag)

    async def export_lag(self) -> None:
        """Set the lag gauge of every partition assigned now."""
        await self.guard.report_lag(self._lag)
