"""The producer's Kafka client: librdkafka (confluent-kafka), its deliveries as asyncio futures.

Chosen by measurement (`make bench-clients`, docs/benchmarks.md): sending the same raw
chunks to the same broker, librdkafka acknowledges ~1.5× the bytes per second of aiokafka
at a fifth of the client's CPU per byte, because aiokafka encodes each request and builds
each batch in Python. The producer only writes; reading quax.progress and listing topics
stay with aiokafka, as in the other services.

librdkafka works in threads of its own. A delivery report is served by :meth:`poll` in one
more thread, the poller, which settles the delivery's asyncio future on the event loop
(``call_soon_threadsafe``); nothing else crosses threads. A failed delivery raises
:class:`ClientError`, a :class:`aiokafka.errors.KafkaError`, so the producer handles both
clients' errors alike; whether waiting for Kafka can cure it is :attr:`ClientError.curable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from typing import Any

import confluent_kafka
from aiokafka.errors import KafkaError

__all__ = ["ClientError", "RawProducer"]

_log = logging.getLogger("librdkafka")
_E = confluent_kafka.KafkaError

#: Errors that waiting and a new client cannot cure: the message, the topic, the
#: configuration or the permissions are wrong. The producer ends on them (status 1).
_INCURABLE = frozenset(
    {
        _E.MSG_SIZE_TOO_LARGE,
        _E.RECORD_LIST_TOO_LARGE,
        _E.INVALID_RECORD,
        _E.TOPIC_EXCEPTION,
        _E.TOPIC_AUTHORIZATION_FAILED,
        _E.CLUSTER_AUTHORIZATION_FAILED,
        _E.SASL_AUTHENTICATION_FAILED,
        _E._AUTHENTICATION,
        _E.UNSUPPORTED_VERSION,
        _E.INVALID_REQUIRED_ACKS,
        _E._INVALID_ARG,
    }
)
#: librdkafka's "unassigned" partition: the partitioner chooses by the key.
_BY_KEY = -1
#: How often the poller wakes when no delivery report is waiting.
_POLL_SECONDS = 0.1


class ClientError(KafkaError):  # type: ignore[misc]  # aiokafka's errors are untyped
    """A librdkafka error, as an aiokafka KafkaError; :attr:`curable` if waiting may cure it."""

    def __init__(self, error: confluent_kafka.KafkaError, *, what: str) -> None:
        super().__init__(f"{what}: {error.name()}: {error.str()}")
        self.code: int = error.code()
        #: Whether waiting for Kafka, with a new client, may cure it. A librdkafka "fatal"
        #: error ends only that client (an idempotent producer whose sequence broke).
        self.curable = self.code not in _INCURABLE


class RawProducer:
    """A librdkafka producer for asyncio: :meth:`send` returns the delivery as a future.

    Made and used on the event loop's thread. ``config`` is librdkafka's (dotted keys).
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self._loop = asyncio.get_running_loop()
        self._producer = confluent_kafka.Producer(
            {**config, "error_cb": self._client_error, "logger": _log}
        )
        self._stopping = threading.Event()
        # The poller also writes librdkafka's log lines: with this context's log fields.
        self._poller = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._poll,),
            name="kafka-deliveries",
            daemon=True,
        )
        self._poller.start()

    async def partitions_for(self, topic: str, *, timeout: float) -> set[int]:
        """The partitions of ``topic``, from the brokers (raises ClientError)."""
        try:
            metadata = await asyncio.to_thread(self._producer.list_topics, topic, timeout)
        except confluent_kafka.KafkaException as error:
            raise ClientError(error.args[0], what=f"reading {topic}'s partitions") from None
        found = metadata.topics[topic]
        if found.error is not None:
            raise ClientError(found.error, what=f"reading {topic}'s partitions")
        return set(found.partitions)

    async def send(
        self, topic: str, value: bytes, *, key: bytes, partition: int | None = None
    ) -> asyncio.Future[None]:
        """Hand one message to the client; the future is settled by Kafka's acknowledgement.

        Without ``partition``, the key chooses it (murmur2, as Java and aiokafka clients do).
        Waits while the client's own queue is full. The future's error is a ClientError.
        """
        delivery: asyncio.Future[None] = self._loop.create_future()

        def report(error: confluent_kafka.KafkaError | None, _message: object) -> None:
            # On the poller's thread.
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for it
                self._loop.call_soon_threadsafe(_settle, delivery, error)

        while True:
            try:
                self._producer.produce(
                    topic,
                    value,
                    key=key,
                    partition=_BY_KEY if partition is None else partition,
                    on_delivery=report,
                )
                return delivery
            except BufferError:  # the client holds as much as it may: wait for deliveries
                await asyncio.sleep(0.01)
            except confluent_kafka.KafkaException as error:
                raise ClientError(error.args[0], what="handing a message to the client") from None

    async def stop(self, timeout: float) -> None:
        """Deliver what the client still holds, for at most ``timeout`` seconds, then end it.

        Deliveries still pending then fail (their futures get a ClientError).
        """
        self._stopping.set()
        await asyncio.to_thread(self._poller.join)
        left = await asyncio.to_thread(self._producer.flush, timeout)
        if left:
            self._producer.purge()
            self._producer.poll(0)  # serves the purged messages' reports

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(_POLL_SECONDS)

    def _client_error(self, error: confluent_kafka.KafkaError) -> None:
        # librdkafka reports connection troubles here (it retries them itself); the
        # deliveries they hold up fail by their timeout. One line per kind per 30 s
        # (quaxspec.logs.RepeatFilter), the kind being the error's name.
        _log.warning(f"Kafka client: {error.name()}: %s", error.str())


def _settle(delivery: asyncio.Future[None], error: confluent_kafka.KafkaError | None) -> None:
    if delivery.done():  # cancelled by its waiter
        return
    if error is None:
        delivery.set_result(None)
    else:
        delivery.set_exception(ClientError(error, what="delivery"))
