"""The aggregator's tables and the changelog topics made up front for them."""

from __future__ import annotations

import faust

from quax_aggregator.tables import Tables
from quaxspec.topics import CHANGELOG_CONFIG, PARTIALS, changelog_topics


def test_changelog_topics_are_the_ones_faust_uses() -> None:
    """Names, partitions and configuration as Faust would create them itself, so that the
    topics made up front (tools/kafka/topics.py, the chart) are the tables' changelogs."""
    app = faust.App("site1-aggregator", broker="kafka://127.0.0.1:1")
    tables = Tables.create(app)
    declared = {}
    for table in (tables.files, tables.runs, tables.offsets):
        topic = table.changelog_topic
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
