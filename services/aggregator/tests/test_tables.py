"""The aggregator's tables and the changelog topics made up front for them."""

from __future__ import annotations

import faust
import pytest

from quax_aggregator.tables import Tables
from quaxspec.topics import CHANGELOG_CONFIG, PARTIALS, changelog_topics


def test_changelog_topics_are_the_ones_faust_uses() -> None:
    """Names, partitions and configuration as Faust would create them itself, so that the
    topics made up front (tools/kafka/topics.py, the chart) are the tables' changelogs."""
    app = faust.App("site1-aggregator", broker="kafka://127.0.0.1:1")
    tables = Tables.create(app)
    declared = {}
    for held in (tables.files, tables.runs, tables.offsets):
        topic = held.table.changelog_topic  # type: ignore[attr-defined]
        declared[topic.get_topic_name()] = topic
    specs = {spec.name: spec for spec in changelog_topics("site1-aggregator")}
    assert (
        set(specs)
        == set(declared)
        == {
            "site1-aggregator-files-changelog",
            "site1-aggregator-runs-changelog",
            "site1-aggregator-offsets-changelog",
        }
    )
    for name, topic in declared.items():
        assert topic.partitions == specs[name].partitions == PARTIALS.partitions
        assert topic.compacting
        assert specs[name].config["cleanup.policy"] == "compact"
        extra = {k: v for k, v in specs[name].config.items() if k != "cleanup.policy"}
        assert dict(topic.config) == extra
    assert all(spec.config == CHANGELOG_CONFIG for spec in specs.values())


class Recording(dict[bytes, bytes]):
    """A table that logs every write, in order, across tables."""

    def __init__(self, name: str, log: list[tuple[str, str, bytes]]) -> None:
        super().__init__()
        self.name, self.log = name, log

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.log.append((self.name, "set", key))
        super().__setitem__(key, value)

    def __delitem__(self, key: bytes) -> None:
        self.log.append((self.name, "del", key))
        super().__delitem__(key)


def _tables(release_every: int) -> tuple[Tables, list[tuple[str, str, bytes]]]:
    log: list[tuple[str, str, bytes]] = []
    tables = Tables(
        Recording("files", log), Recording("runs", log), Recording("offsets", log),
        release_every=release_every,
    )  # fmt: skip
    return tables, log


def test_writes_are_read_at_once_and_reach_the_table_every_n_records() -> None:
    tables, log = _tables(release_every=3)
    for offset in range(2):
        tables.handling(0)
        tables.files[b"r/1"] = f"state after {offset}".encode()
        tables.offsets[b"0"] = bytes([offset + 1])
        tables.settle(0)
    assert tables.files[b"r/1"] == b"state after 1"
    assert dict(tables.offsets) == {b"0": b"\x02"}
    assert log == []  # held
    tables.handling(0)
    tables.files[b"r/1"] = b"state after 2"
    tables.offsets[b"0"] = b"\x03"
    tables.settle(0)
    assert log == [("files", "set", b"r/1"), ("offsets", "set", b"0")]  # once each, state first
    assert tables.files.table == {b"r/1": b"state after 2"}


def test_a_changed_run_releases_at_once_with_its_deletions_state_before_offsets() -> None:
    tables, log = _tables(release_every=100)
    tables.handling(1)
    tables.files[b"r/1"] = b"open"
    tables.settle(1)
    tables.handling(1)
    tables.offsets[b"1"] = b"\x07"  # the ledger is written first here, released last
    del tables.files[b"r/1"]
    tables.runs[b"r"] = b"run"
    tables.settle(1)
    assert log == [("runs", "set", b"r"), ("offsets", "set", b"1")]  # r/1 never reached it
    assert dict(tables.files) == {}
    with pytest.raises(KeyError):
        del tables.files[b"r/1"]


def test_each_partition_is_released_on_its_own() -> None:
    tables, log = _tables(release_every=2)
    tables.handling(0)
    tables.files[b"a/1"] = b"a"
    tables.settle(0)
    tables.handling(1)
    tables.files[b"b/1"] = b"b"
    tables.settle(1)
    assert log == []
    tables.handling(0)
    tables.settle(0)
    assert log == [("files", "set", b"a/1")]
    assert sorted(tables.files) == [b"a/1", b"b/1"]


def test_a_partition_given_away_keeps_none_of_its_held_writes() -> None:
    """Another worker reads its records again from the last release; nothing held here may
    shadow the table if the partition comes back."""
    tables, log = _tables(release_every=100)
    tables.files.table[b"b/1"] = b"released"
    log.clear()
    tables.handling(1)
    tables.files[b"b/1"] = b"held"
    tables.offsets[b"1"] = b"\x09"
    tables.own([0])
    assert tables.files[b"b/1"] == b"released"
    assert b"1" not in tables.offsets
    tables.handling(1)  # a record of partition 1 still on its way through the agent
    tables.files[b"b/1"] = b"late write"
    tables.settle(1)
    assert tables.files[b"b/1"] == b"released"
    tables.own([0, 1])
    tables.settle(1)
    assert log == []
