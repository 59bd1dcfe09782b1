"""Producer settings: defaults, environment, derived run id and the checks made at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from quax_producer.settings import ProducerSettings
from quaxspec.progress import Shard
from quaxspec.settings import S3Settings


def test_environment_variables_fill_the_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("QUAX_PRODUCER_SOURCE", "watch")
    monkeypatch.setenv("QUAX_PRODUCER_DIRECTORY", str(tmp_path / "run-0042"))
    monkeypatch.setenv("QUAX_PRODUCER_MB_PER_S", "16")
    monkeypatch.setenv("QUAX_KAFKA_TOPIC_PREFIX", "test.")

    settings = ProducerSettings()

    assert (settings.source, settings.mb_per_s, settings.run_base) == ("watch", 16.0, "run-0042")
    assert settings.kafka.topic_prefix == "test."


def test_the_source_is_named_for_resuming_and_for_new_run_ids(tmp_path):
    synthetic = ProducerSettings(seed=7)
    assert (synthetic.source_identity, synthetic.run_base) == ("synthetic:seed=7", "synthetic-7")
    watched = ProducerSettings(source="watch", directory=tmp_path / "r1")
    assert watched.source_identity == f"watch:{(tmp_path / 'r1').resolve()}"
    assert watched.run_base == "r1"
    assert ProducerSettings(run_id="quax-2025-03", seed=7).run_id == "quax-2025-03"


def test_a_runs_configuration_holds_samples_per_file_only_for_the_synthetic_daq(tmp_path):
    synthetic = ProducerSettings(n_fft=2048, samples_per_file=4096, f_lo=9e9).run_config
    assert (synthetic.n_fft, synthetic.samples_per_file, synthetic.f_lo) == (2048, 4096, 9e9)
    replay = ProducerSettings(source="directory", directory=tmp_path, samples_per_file=4096)
    assert replay.run_config.samples_per_file is None  # the files say how long they are


def test_directory_sources_need_a_directory():
    with pytest.raises(ValidationError, match="the watch source needs a directory"):
        ProducerSettings(source="watch")


def test_the_s3_source_needs_an_s3_url_and_is_named_by_store_bucket_and_prefix(monkeypatch):
    with pytest.raises(ValidationError, match="the s3 source needs a bucket_url"):
        ProducerSettings(source="s3")
    with pytest.raises(
        ValidationError, match="'https://x/y' is not s3://bucket or s3://bucket/prefix"
    ):
        ProducerSettings(source="s3", bucket_url="https://x/y")
    monkeypatch.setenv("QUAX_S3_ENDPOINT_URL", "http://store:8333")
    monkeypatch.setenv("QUAX_S3_ADDRESSING_STYLE", "path")
    settings = ProducerSettings(source="s3", bucket_url="s3://quax/2026/run-0042")
    assert settings.source_identity == "s3:http://store:8333:s3://quax/2026/run-0042/"
    assert (settings.run_base, settings.s3.addressing_style) == ("run-0042", "path")
    assert ProducerSettings(source="s3", bucket_url="s3://quax").run_base == "quax"


def test_s3_keys_go_together_and_the_secret_is_never_shown():
    with pytest.raises(ValidationError, match="access_key_id and secret_access_key go together"):
        S3Settings(access_key_id="quax")
    settings = S3Settings(access_key_id="quax", secret_access_key="hidden")  # type: ignore[arg-type]
    assert "hidden" not in repr(settings)


def test_a_chunk_must_fit_the_kafka_message_limit():
    with pytest.raises(
        ValidationError, match=r"raw chunks of up to \d+ bytes, more than the Kafka message limit"
    ) as refused:
        ProducerSettings(slices_per_chunk=128)
    assert "chunks of n_fft 3072 fit up to 85 slices" in str(refused.value)


def test_a_run_whose_spectra_cannot_fit_the_message_limit_is_refused_at_start():
    with pytest.raises(ValidationError) as refused:
        ProducerSettings(n_fft=20_000, slices_per_chunk=1)
    text = str(refused.value)
    assert "file spectra" not in text  # 20,000 bins: the file spectrum still fits
    assert "run spectra of up to" in text
    assert "the largest n_fft whose partials and spectra fit is 12860" in text
    ProducerSettings(n_fft=12_860, slices_per_chunk=1)  # the largest that fits is accepted


def test_a_shard_is_k_of_n_for_a_named_replay():
    assert ProducerSettings(run_id="r", shard="2/3").shard_of_run == Shard(2, 3)
    assert ProducerSettings().shard_of_run is None


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"run_id": "r", "shard": "3/2"}, "1 ≤ K ≤ N"),
        ({"run_id": "r", "shard": "1-2"}, "not of the form K/N"),
        ({"shard": "1/2"}, "a shard needs a run id"),
        ({"run_id": "r", "shard": "1/2", "source": "watch"}, "shard a replay instead"),
    ],
)
def test_a_shard_that_cannot_work_is_refused_with_the_reason(tmp_path, fields, reason):
    with pytest.raises(ValidationError, match=reason):
        ProducerSettings(directory=tmp_path, **fields)
