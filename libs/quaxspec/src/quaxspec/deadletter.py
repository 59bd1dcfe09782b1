"""Dead-letter records: a message a service could not use, unchanged, with the reason in headers."""

from __future__ import annotations

__all__ = ["REASON_HEADER", "deadletter_headers"]

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
