"""Dead-letter records: a message a service could not use, with the reason in headers.

The payload is kept unchanged up to :data:`MAX_PAYLOAD_BYTES` and cut beyond (a raw chunk
is up to 1.5 MiB): a DAQ writing NaNs dead-letters every chunk, and the reason, the source
offset and the first bytes are what an operator needs. The original length is a header.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "REASON_HEADER",
    "Rejecter",
    "Send",
    "Source",
    "dead_letter",
    "deadletter_headers",
    "reason_of",
]

log = structlog.get_logger("quax.deadletter")

#: Payload bytes kept of a dead-lettered record.
MAX_PAYLOAD_BYTES = 64 * 1024
#: Longest reason kept (an exception message can quote a whole record).
MAX_REASON_CHARS = 2000

#: Header names on dead-letter records.
REASON_HEADER = "quax-reason"
LENGTH_HEADER = "quax-original-bytes"
SERVICE_HEADER = "quax-service"
SOURCE_HEADER = "quax-source"


#: A topic's send: ``await send(key=…, value=…, headers=…)`` (a Faust topic's, or a test's).
Send = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Source:
    """Where a record came from."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


def reason_of(error: Exception, known: Sequence[tuple[type[Exception], str]]) -> tuple[str, str]:
    """The metric label and the dead-letter reason of a record's failure.

    ``known`` maps the exception types a service expects (most specific first) to labels,
    their message being the reason; anything else is ``error``, with the exception's type.
    """
    for kind, label in known:
        if isinstance(error, kind):
            return label, str(error)
    return "error", f"{type(error).__name__}: {error}"


def deadletter_headers(*, reason: str, service: str, source: Source) -> list[tuple[str, bytes]]:
    """Headers that say why a record was rejected, by whom, and where it came from."""
    return [
        (REASON_HEADER, reason.encode()),
        (SERVICE_HEADER, service.encode()),
        (SOURCE_HEADER, str(source).encode()),
    ]


async def dead_letter(
    send: Send,
    *,
    key: bytes | None,
    value: bytes | None,
    reason: str,
    service: str,
    source: Source,
) -> None:
    """Log why a record is rejected and send it (its first MAX_PAYLOAD_BYTES) with ``send``."""
    log.warning(
        "Sent a record to the dead-letter topic.",
        reason=reason,
        service=service,
        source=str(source),
    )
    headers = deadletter_headers(reason=reason[:MAX_REASON_CHARS], service=service, source=source)
    if value is not None:
        headers.append((LENGTH_HEADER, str(len(value)).encode()))
        value = value[:MAX_PAYLOAD_BYTES]
    await send(key=key, value=value, headers=headers)


class _ByReason(Protocol):
    def labels(self, *, reason: str) -> Any: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejecter:
    """What a service does with a record it cannot use.

    The reason comes from the error (``known`` maps the errors a service expects, most
    specific first, to metric labels; anything else is ``error`` and is logged with its
    traceback as ``unforeseen``), the rejection is counted by label, and the record goes
    to the dead-letter topic once.
    """

    send: Send
    service: str
    known: Sequence[tuple[type[Exception], str]]
    counter: _ByReason
    unforeseen: str

    async def __call__(
        self, *, key: bytes | None, value: bytes | None, source: Source, error: Exception
    ) -> None:
        """Reject one record."""
        reason, why = reason_of(error, self.known)
        if reason == "error":
            log.exception(self.unforeseen, service=self.service, error=why)
        self.counter.labels(reason=reason).inc()
        await dead_letter(
            self.send, key=key, value=value, reason=why, service=self.service, source=source
        )
