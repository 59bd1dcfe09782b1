"""The command line: options override the settings, the environment still applies."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from quax_producer import app as producer_app
from quax_producer.cli import app


@pytest.fixture
def captured(monkeypatch):
    seen = []

    def run(settings):
        seen.append(settings)
        return 0

    monkeypatch.setattr(producer_app, "run", run)
    return seen


def test_run_options_override_the_settings(captured, monkeypatch, tmp_path):
    monkeypatch.setenv("QUAX_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("QUAX_PRODUCER_N_FFT", "1024")
    monkeypatch.setenv("QUAX_PRODUCER_FILES", "9")

    result = CliRunner().invoke(
        app,
        [
            "run", "--source", "directory", "--directory", str(tmp_path), "--as-fast-as-possible",
            "--run-id", "X", "--files", "3", "--topic-prefix", "t.", "--log-level", "DEBUG",
            "--watch-method", "poll", "--delivery-timeout-seconds", "7",
        ],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    [settings] = captured
    assert (settings.source, settings.directory, settings.run_id) == ("directory", tmp_path, "X")
    assert settings.as_fast_as_possible
    assert settings.files == 3
    assert settings.n_fft == 1024  # from the environment: no option given
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.kafka.topic_prefix == "t."
    assert settings.logging.level == "DEBUG"
    assert (settings.watch_method, settings.delivery_timeout_seconds) == ("poll", 7.0)


def test_invalid_settings_exit_with_status_2(captured):
    result = CliRunner().invoke(app, ["run", "--source", "watch"])

    assert result.exit_code == 2
    assert "the watch source needs a directory" in result.output
    assert captured == []


def test_a_run_whose_messages_cannot_fit_is_refused_before_anything_starts(captured):
    result = CliRunner().invoke(app, ["run", "--source", "synthetic", "--n-fft", "20000"])
    assert result.exit_code == 2
    assert captured == []  # nothing ran
    assert "run spectra of up to" in result.output
    assert "the largest n_fft whose partials and spectra fit is 12860" in result.output


def test_generate_still_writes_pairs(tmp_path):
    result = CliRunner().invoke(
        app, ["generate", str(tmp_path), "--files", "2", "--samples", "1000"]
    )

    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "duck_i_00000.dat", "duck_i_00001.dat", "duck_q_00000.dat", "duck_q_00001.dat",
    ]  # fmt: skip
