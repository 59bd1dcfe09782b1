"""Dead letters: the reason, the source and the original length in headers, a bounded payload."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from quaxspec.deadletter import MAX_PAYLOAD_BYTES, Source, dead_letter, reason_of


def _sent(value: bytes | None, reason: str = "bad") -> dict[str, Any]:
    sent: dict[str, Any] = {}

    async def send(**record: Any) -> None:
        sent.update(record)

    asyncio.run(
        dead_letter(
            send,
            key=b"run/00007",
            value=value,
            reason=reason,
            service="fft-worker",
            source=Source("quax.raw", 3, 42),
        )
    )
    return sent


@pytest.mark.parametrize("size", [0, 10, MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES + 1, 1_572_928])
def test_the_payload_is_kept_up_to_the_bound_and_its_length_is_a_header(size: int) -> None:
    value = bytes(range(256)) * (size // 256) + bytes(size % 256)
    sent = _sent(value)
    headers = dict(sent["headers"])
    assert sent["key"] == b"run/00007"
    assert sent["value"] == value[:MAX_PAYLOAD_BYTES]
    assert headers["quax-original-bytes"] == str(size).encode()
    assert headers["quax-reason"] == b"bad"
    assert headers["quax-service"] == b"fft-worker"
    assert headers["quax-source"] == b"quax.raw/3/42"


def test_a_tombstone_stays_one_and_a_long_reason_is_cut() -> None:
    sent = _sent(None, reason="x" * 10_000)
    headers = dict(sent["headers"])
    assert sent["value"] is None
    assert "quax-original-bytes" not in headers
    assert headers["quax-reason"] == b"x" * 2000


class TooLargeError(ValueError):
    pass


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (TooLargeError("big"), ("too-large", "big")),  # the more specific type, listed first
        (ValueError("odd"), ("inconsistent", "odd")),
        (MemoryError("cannot plan"), ("error", "MemoryError: cannot plan")),
        (KeyError("x"), ("error", "KeyError: 'x'")),
    ],
)
def test_expected_failures_get_their_label_and_others_their_type(
    error: Exception, expected: tuple[str, str]
) -> None:
    known = [(TooLargeError, "too-large"), (ValueError, "inconsistent")]
    assert reason_of(error, known) == expected
