"""File timeouts count only silence: time during which chunks could have come and did not."""

from __future__ import annotations

import pytest

from quaxspec.timeouts import SilenceClock


def test_a_silent_file_is_due_after_the_timeout_and_requested_once():
    clock = SilenceClock(timeout=10.0)
    due = [clock.tick(t, upstream_idle=True, files=[("a", 0.0)]) for t in range(0, 16, 5)]
    assert due == [[], [], [], ["a"]]  # 15 s of silence > 10 s
    assert clock.tick(20.0, upstream_idle=True, files=[("a", 0.0)]) == []  # asked already
    assert clock.silence("a") == 20.0


def test_time_while_upstream_is_behind_or_unknown_is_not_silence():
    clock = SilenceClock(timeout=10.0)
    ticks = [(0, True), (5, True), (10, False), (200, False), (205, True), (210, True)]
    due = [clock.tick(t, upstream_idle=idle, files=[("a", 0.0)]) for t, idle in ticks]
    assert due == [[], [], [], [], [], ["a"]]
    assert clock.silence("a") == 15.0  # 0–5, 200–205 and 205–210; the outage did not count


def test_a_new_chunk_starts_the_silence_again_and_closed_files_are_forgotten():
    clock = SilenceClock(timeout=10.0)
    clock.tick(0.0, upstream_idle=True, files=[("a", 0.0), ("b", 0.0)])
    clock.tick(8.0, upstream_idle=True, files=[("a", 0.0), ("b", 0.0)])
    due = clock.tick(16.0, upstream_idle=True, files=[("a", 12.0), ("b", 0.0)])
    assert due == ["b"]
    assert clock.silence("a") == 0.0
    clock.tick(20.0, upstream_idle=True, files=[("a", 12.0)])  # b was closed
    assert clock.silence("b") == 0.0
    assert clock.tick(40.0, upstream_idle=True, files=[("a", 12.0)]) == ["a"]


def test_a_timeout_must_be_positive():
    with pytest.raises(ValueError, match="timeout must be positive"):
        SilenceClock(timeout=0.0)
