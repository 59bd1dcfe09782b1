"""Dead letters: the reason, the source and the original length in headers, a bounded payload."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from quaxspec.deadletter import MAX_PAYLOAD_BYTES, Rejecter, Source, dead_letter, reason_of


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


@pytest.mark.parametrize(
    ("error", "label", "reason"),
    [
        (KeyError("n_fft"), "undecodable", "'n_fft'"),
        (ValueError("6 bins"), "inconsistent", "6 bins"),
        (ZeroDivisionError("x"), "error", "ZeroDivisionError: x"),
    ],
)
def test_a_rejecter_counts_by_label_and_sends_the_reason_once(error, label, reason) -> None:
    counter = Counter("probe_rejects", "Probe.", ["reason"], registry=CollectorRegistry())
    sent: list[dict[str, Any]] = []

    async def send(**record: Any) -> None:
        sent.append(record)

    reject = Rejecter(
        send=send, service="probe", known=[(KeyError, "undecodable"), (ValueError, "inconsistent")],
        counter=counter, unforeseen="A probe record could not be used.",
    )  # fmt: skip
    asyncio.run(reject(key=b"k", value=b"v", source=Source("t", 0, 9), error=error))
    assert counter.labels(reason=label)._value.get() == 1
    (record,) = sent
    headers = dict(record["headers"])
    assert headers["quax-reason"] == reason.encode()
    assert headers["quax-service"] == b"probe"
    assert headers["quax-source"] == b"t/0/9"
