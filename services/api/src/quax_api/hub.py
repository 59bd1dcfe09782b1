"""Fan-out of live updates to WebSocket clients, each with a bounded queue.

A client that does not keep up loses its oldest queued updates (and is told how many);
it never slows the consumer, the other clients or the server. An update is encoded once
and the same string is queued for every client, so memory does not grow with clients.
"""

from __future__ import annotations

import asyncio
import json

from prometheus_client import Counter, Gauge

__all__ = ["Hub", "Subscription"]

CLIENTS = Gauge("quax_api_websocket_clients", "Connected WebSocket clients.")
DROPPED = Counter(
    "quax_api_websocket_dropped", "Updates dropped from the queues of slow WebSocket clients."
)


class Subscription:
    """One client's interest (some runs, or all) and its queue of encoded updates."""

    def __init__(self, *, runs: frozenset[str] | None, maxsize: int) -> None:
        self.runs = runs
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def wants(self, run_id: str) -> bool:
        """Whether updates of ``run_id`` go to this client."""
        return self.runs is None or run_id in self.runs

    def offer(self, message: str) -> None:
        """Queue an update, dropping the oldest one when the queue is full."""
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
            DROPPED.inc()
        self.queue.put_nowait(message)


class Hub:
    """The set of subscriptions, and the one place updates are published."""

    def __init__(self, *, maxsize: int) -> None:
        self._maxsize = maxsize
        self._subscriptions: set[Subscription] = set()

    def subscribe(self, runs: frozenset[str] | None) -> Subscription:
        """Register a client."""
        subscription = Subscription(runs=runs, maxsize=self._maxsize)
        self._subscriptions.add(subscription)
        CLIENTS.set(len(self._subscriptions))
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a client."""
        self._subscriptions.discard(subscription)
        CLIENTS.set(len(self._subscriptions))

    def publish(self, run_id: str, kind: str, document: bytes) -> None:
        """Offer an update (a quax.spectra or quax.runs JSON document) to interested clients."""
        message = f'{{"type":"{kind}","run_id":{json.dumps(run_id)},"data":{document.decode()}}}'
        for subscription in self._subscriptions:
            if subscription.wants(run_id):
                subscription.offer(message)

    def __len__(self) -> int:
        return len(self._subscriptions)
