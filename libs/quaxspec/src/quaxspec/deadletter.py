"""Dead-letter records: a message a service could not use, unchanged, with the reason in headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

__all__ = ["REASON_HEADER", "dead_letter", "deadletter_headers"]

log = structlog.get_logger("quax.deadletter")

#: Header names on dead-letter records.
REASON_HEADER = "quax-reason"
SERVICE_HEADER = "quax-service"
SOURCE_HEADER = "quax-source"


def deadletter_headers(
    *, reason: str, service: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """Headers that say why a record was rejected, by whom, and where it came from."""
    return [
        (REASON_HEADER, reason.encode()),
        (SERVICE_HEADER, service.encode()),
        (SOURCE_HEADER, f"{topic}/{partition}/{offset}".encode()),
    ]


async def dead_letter(
    send: Callable[..., Awaitable[Any]],
    *,
    key: bytes | None,
    value: bytes | None,
    reason: str,
    service: str,
    topic: str,
    partition: int,
    offset: int,
) -> None:
    """Log why a record is rejected and send it, unchanged, with ``send`` (a topic's send)."""
    log.warning(
        "Sent a record to the dead-letter topic.",
        reason=reason,
        service=service,
        source=f"{topic}/{partition}/{offset}",
    )
    headers = deadletter_headers(
        reason=reason, service=service, topic=topic, partition=partition, offset=offset
    )
    await send(key=key, value=value, headers=headers)
