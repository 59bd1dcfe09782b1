"""The s3 source against a real object store (SeaweedFS): as a folder, through failures, resumed."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from botocore.exceptions import ClientError
from objectstore import DroppingProxy

from quax_producer.bucket import Bucket, bucket_source
from quax_producer.items import BadPair
from quax_producer.settings import ProducerSettings
from quax_producer.sources import directory_source, open_source
from quaxspec.daq import DaqRecord, pair_paths, write_pair
from quaxspec.settings import S3Location, S3Settings

pytestmark = pytest.mark.s3


def _write(directory, number, n=3072 * 4 + 5):
    rng = np.random.default_rng(number)
    i, q = rng.standard_normal((2, n), dtype=np.float32)
    write_pair(directory, number, i, q)


def _upload_folder(s3, directory, url):
    location = S3Location.parse(url)
    client = s3.client()
    for path in sorted(directory.iterdir()):
        client.upload_file(str(path), location.bucket, location.prefix + path.name)


async def _collect(source):
    return [item async for item in source]


def _fill(tmp_path, s3, name):
    """A folder with good pairs and bad ones, and the same files under a prefix."""
    folder = tmp_path / name
    folder.mkdir()
    for number in (12, 3, 7, 10, 1, 4):
        _write(folder, number)
    pair_paths(folder, 5)[0].write_bytes(b"\0" * 256)  # I without its Q partner
    i, q = pair_paths(folder, 8)
    i.write_bytes(b"\0" * 256)
    q.write_bytes(b"\0" * 255)  # a truncated object: not whole float32 samples
    i, q = pair_paths(folder, 9)
    i.write_bytes(b"\0" * 256)
    q.write_bytes(b"\0" * 128)  # mismatched lengths
    (folder / "notes.txt").write_text("not a DAQ file")
    url = f"s3://{s3.bucket(name)}/daq/run1"
    _upload_folder(s3, folder, url)
    s3.client().put_object(Bucket=name, Key="daq/run1/deeper/duck_i_00099.dat", Body=b"\0" * 8)
    return folder, url


async def test_a_bucket_yields_what_its_folder_yields_bad_pairs_reported_and_skipped(tmp_path, s3):
    folder, url = _fill(tmp_path, s3, "same-as-folder")
    bucket = Bucket(S3Location.parse(url), s3.settings(), page_size=3)  # several listing pages

    from_folder = await _collect(directory_source(folder))
    from_bucket = await _collect(bucket_source(bucket, read_ahead=2))

    records = [r for r in from_bucket if isinstance(r, DaqRecord)]
    assert [r.number for r in records] == [1, 3, 4, 7, 10, 12]
    assert [r.number for r in records] == [
        r.number for r in from_folder if isinstance(r, DaqRecord)
    ]
    for got, expected in zip(
        records, (r for r in from_folder if isinstance(r, DaqRecord)), strict=True
    ):
        np.testing.assert_array_equal(got.i, expected.i)
        np.testing.assert_array_equal(got.q, expected.q)
        assert got.fingerprint() == expected.fingerprint()
        assert got.source == f"{url}/duck_i_{got.number:05d}.dat"
    bad = {b.error.path.name: b for b in from_bucket if isinstance(b, BadPair)}
    folder_bad = {b.error.path.name: b for b in from_folder if isinstance(b, BadPair)}
    assert (
        set(bad) == set(folder_bad) == {"duck_i_00005.dat", "duck_q_00008.dat", "duck_i_00009.dat"}
    )
    for name, item in bad.items():
        assert (item.reason, item.error.reason) == (
            folder_bad[name].reason,
            folder_bad[name].error.reason,
        )
    assert str(bad["duck_q_00008.dat"].error).startswith(f"{url}/duck_q_00008.dat: size 255 bytes")
    assert "truncated" in bad["duck_q_00008.dat"].error.reason
    assert bad["duck_i_00005.dat"].reason == "unpaired"
    assert bad["duck_i_00009.dat"].error.reason == "I has 64 samples but duck_q_00009.dat has 32"


async def test_first_file_limit_and_skip_mean_what_they_mean_for_a_folder(tmp_path, s3):
    folder, url = _fill(tmp_path, s3, "ranges")
    bucket = Bucket(S3Location.parse(url), s3.settings())
    for options in ({"first_file": 4}, {"limit": 3}, {"first_file": 2, "limit": 2}):
        for skip in (lambda n: False, lambda n: n in (3, 7)):
            a = await _collect(directory_source(folder, skip=skip, **options))
            b = await _collect(bucket_source(bucket, skip=skip, **options))
            numbers = [[r.number for r in items if isinstance(r, DaqRecord)] for items in (a, b)]
            assert numbers[0] == numbers[1], options


async def test_a_store_that_drops_connections_for_a_while_is_waited_for_and_nothing_is_lost(
    tmp_path, s3
):
    folder = tmp_path / "drops"
    folder.mkdir()
    for number in range(10):
        _write(folder, number, n=3072 * 200)  # 2.4 MB objects: a drop can land mid-body
    url = f"s3://{s3.bucket('drops')}/run"
    _upload_folder(s3, folder, url)
    proxy = DroppingProxy(s3.port)
    retries = []
    try:
        bucket = Bucket(S3Location.parse(url), s3.settings(endpoint=proxy.endpoint))
        items = []
        async for item in bucket_source(bucket, read_ahead=3, on_retry=lambda: retries.append(1)):
            items.append(item)
            if len(items) == 2:  # the next three are being downloaded: cut them for 4 s
                proxy.drop()
                threading.Timer(4.0, proxy.heal).start()
                await asyncio.sleep(0.1)
    finally:
        proxy.close()

    expected = await _collect(directory_source(folder))
    assert [r.number for r in items if isinstance(r, DaqRecord)] == list(range(10))
    for got, want in zip(items, expected, strict=True):
        np.testing.assert_array_equal(got.i, want.i)
        np.testing.assert_array_equal(got.q, want.q)
    assert proxy.cut > 0
    assert retries  # the backoff here took over from botocore's own attempts


def test_resuming_reads_a_files_fingerprint_and_the_first_time_from_the_bucket(tmp_path, s3):
    folder, url = _fill(tmp_path, s3, "resume")
    settings = ProducerSettings(source="s3", bucket_url=url, s3=s3.settings())
    source = open_source(settings)
    local = open_source(ProducerSettings(source="directory", directory=folder))

    assert source.fingerprint_of(7) == local.fingerprint_of(7)
    assert source.fingerprint_of(6) is None  # no such pair
    assert source.fingerprint_of(5) is None  # no partner
    listed = s3.client().head_object(Bucket="resume", Key="daq/run1/duck_q_00001.dat")
    assert source.first_time() >= listed["LastModified"].timestamp() - 1
    assert settings.run_base == "run1"
    assert settings.source_identity == f"s3:{s3.endpoint}:s3://resume/daq/run1/"


async def test_a_start_that_names_a_new_run_lists_the_prefix_once(tmp_path, s3):
    _, url = _fill(tmp_path, s3, "listed-once")
    source = open_source(ProducerSettings(source="s3", bucket_url=url, s3=s3.settings()))
    assert source.bucket is not None
    source.bucket._page_size = 3  # several pages
    requests: list[str] = []
    source.bucket._client.meta.events.register(
        "before-call.s3.ListObjectsV2", lambda **_: requests.append("list")
    )
    source.bucket.scan()
    pages, requests[:] = len(requests), []

    source.first_time()
    items = await _collect(source.items(skip=lambda number: False))

    assert [r.number for r in items if isinstance(r, DaqRecord)] == [1, 3, 4, 7, 10, 12]
    assert pages > 1
    assert len(requests) == pages  # one listing: not one to name the run and one to stream it


async def test_credentials_and_endpoint_come_the_standard_aws_ways(tmp_path, s3, monkeypatch):
    _, url = _fill(tmp_path, s3, "standard-ways")
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[daq]\naws_access_key_id = {s3.access_key}\naws_secret_access_key = {s3.secret_key}\n"
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = Bucket(S3Location.parse(url), S3Settings(profile="daq", addressing_style="path"))

    items = await _collect(bucket_source(bucket))

    assert [r.number for r in items if isinstance(r, DaqRecord)] == [1, 3, 4, 7, 10, 12]


async def test_refused_credentials_stop_the_source_with_the_stores_reason(tmp_path, s3):
    _, url = _fill(tmp_path, s3, "refused")
    wrong = S3Settings(
        endpoint_url=s3.endpoint,
        region="us-east-1",
        access_key_id="nobody",
        secret_access_key="wrong",  # type: ignore[arg-type]
        addressing_style="path",
    )
    retries = []

    with pytest.raises(ClientError) as refused:
        await _collect(
            bucket_source(Bucket(S3Location.parse(url), wrong), on_retry=lambda: retries.append(1))
        )

    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert not retries  # a lasting refusal is not waited for
