"""Producer settings: defaults, environment, derived run id and the checks made at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from quax_producer.settings import ProducerSettings


def test_every_field_is_described():
    for name, field in ProducerSettings.model_fields.items():
        assert field.description, name


def test_environment_variables_fill_the_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("QUAX_PRODUCER_SOURCE", "watch")
    monkeypatch.setenv("QUAX_PRODUCER_DIRECTORY", str(tmp_path / "run-0042"))
    monkeypatch.setenv("QUAX_PRODUCER_MB_PER_S", "16")
    monkeypatch.setenv("QUAX_KAFKA_TOPIC_PREFIX", "test.")

    settings = ProducerSettings()

    assert (settings.source, settings.mb_per_s, settings.run) == ("watch", 16.0, "run-0042")
    assert settings.kafka.topic_prefix == "test."


def test_run_id_is_derived_from_the_source_unless_given(tmp_path):
    assert ProducerSettings(seed=7).run == "synthetic-7"
    assert ProducerSettings(source="directory", directory=tmp_path / "r1").run == "r1"
    assert ProducerSettings(run_id="quax-2025-03", seed=7).run == "quax-2025-03"


def test_directory_sources_need_a_directory():
    with pytest.raises(ValidationError, match="the watch source needs a directory"):
        ProducerSettings(source="watch")


def test_a_chunk_must_fit_the_kafka_message_limit():
    with pytest.raises(ValidationError, match="more than the Kafka message limit"):
        ProducerSettings(slices_per_chunk=128)
