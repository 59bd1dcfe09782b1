"""What the follower does with a record, and how long it waits between attempts (no Kafka)."""

from __future__ import annotations

import asyncio
import time

import pytest

from quax_api import consumer
from quax_api.hub import Hub
from quax_api.settings import ApiSettings
from quax_api.store import SpectrumStore


class _Hub(Hub):
    def __init__(self) -> None:
        super().__init__(maxsize=8)
        self.sent: list[tuple[str, str]] = []

    def publish(self, run_id: str, kind: str, document: bytes) -> None:
        self.sent.append((run_id, kind))


@pytest.mark.parametrize(("publish", "current"), [(False, False), (True, False), (True, True)])
def test_a_replayed_file_is_published_if_new_but_its_age_is_no_latency(
    builder, publish: bool, current: bool
) -> None:
    spectra, _ = builder("run-a", 2)
    old = spectra[0].to_bytes()  # its DAQ time is in 2023: years old
    consumer.LATENCY.set(0.25)
    store, hub = SpectrumStore(recent_files=5), _Hub()
    consumer._take(False, old, store, hub, publish=publish, current=current)
    consumer._take(False, old, store, hub, publish=publish, current=current)  # once more
    assert store.run_ids() == ["run-a"]
    assert hub.sent == ([("run-a", "file")] if publish else [])
    latency = consumer.LATENCY._value.get()
    assert latency > 3e7 if current else latency == 0.25


def test_an_undecodable_record_is_counted_by_its_kind() -> None:
    before = consumer.REJECTS.labels(kind="run")._value.get()
    consumer._take(True, b"{", SpectrumStore(recent_files=5), _Hub(), publish=True, current=True)
    assert consumer.REJECTS.labels(kind="run")._value.get() == before + 1


def test_the_wait_doubles_while_attempts_fail_and_resets_after_a_long_one(monkeypatch) -> None:
    clock = [0.0]
    waits: list[float] = []
    # How long each attempt follows before it fails; the last one is cancelled.
    lasts = iter([0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 300.0, 0.1, None])

    async def follow(*args: object, **kwargs: object) -> None:
        last = next(lasts)
        if last is None:
            raise asyncio.CancelledError
        clock[0] += last
        raise ConnectionError("broker away")

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(consumer, "follow", follow)
    monkeypatch.setattr(consumer.asyncio, "sleep", sleep)
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(
            consumer.follow_forever(
                ApiSettings(),
                store=SpectrumStore(recent_files=5),
                hub=_Hub(),
                ready=asyncio.Event(),
            )
        )
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 1.0, 2.0]
