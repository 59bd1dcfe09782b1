"""Log lines: the Kafka client's repeated lines are thinned, everything else passes."""

from __future__ import annotations

import logging

from quaxspec.logs import RepeatFilter


def _record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_one_line_of_a_kind_per_interval_then_a_count_of_those_held_back():
    now = [0.0]
    thin = RepeatFilter(interval=30.0, clock=lambda: now[0])
    passed = []
    for second in range(0, 65):  # a broker away for a minute, an attempt a second
        now[0] = float(second)
        record = _record("aiokafka.conn", "Unable connect to node with id %s: %s", 1, "refused")
        if thin.filter(record):
            passed.append((second, record.getMessage()))

    assert [second for second, _ in passed] == [0, 30, 60]
    assert passed[0][1] == "Unable connect to node with id 1: refused"
    assert passed[1][1].endswith("(29 more like it in the last 30 s)")


def test_other_kinds_and_other_loggers_are_not_held_back():
    thin = RepeatFilter(interval=30.0, clock=lambda: 0.0)
    assert thin.filter(_record("aiokafka", "first kind"))
    assert thin.filter(_record("aiokafka", "second kind"))
    assert thin.filter(_record("aiokafka", "first kind", level=logging.WARNING))
    for _ in range(3):
        assert thin.filter(_record("quax_producer.stream", "Sent a file."))
