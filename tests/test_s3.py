"""Runs streamed from a real object store (SeaweedFS's S3 gateway) through the real pipeline.

The reference is the folder the bucket was filled from: the same files streamed from the folder
give the same spectra to the last bit, and both equal scipy's welch over the files' samples.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest
import reference
from localkafka import LocalKafka
from objectstore import LocalS3
from pipeline import Pipeline, streaming

from quaxspec.daq import write_pair
from quaxspec.messages import RawChunk
from quaxspec.synthetic import SyntheticDaq
from quaxspec.topics import RAW

pytestmark = [pytest.mark.kafka, pytest.mark.s3, pytest.mark.slow]

N_FFT = 3072
SAMPLES = N_FFT * 70 + 11  # 70 slices: chunks of 32, 32 and 6; 11 samples dropped
CHUNKS_PER_FILE = 3


@pytest.fixture(scope="module")
def pipeline(kafka: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with streaming(kafka, tmp_path_factory.mktemp("s3-pipeline")) as pipe:
        yield pipe


def _daq_files(pipeline: Pipeline, s3: LocalS3, name: str, files: int, seed: int):
    """A folder of DAQ pairs and the same files in a bucket; the samples by file number."""
    folder = pipeline.root / name
    folder.mkdir()
    daq = SyntheticDaq(seed=seed, n_samples=SAMPLES)
    samples = {n: daq.samples(n) for n in range(files)}
    for number, (i, q) in samples.items():
        write_pair(folder, number, i, q)
    url = f"s3://{s3.bucket(name)}/daq/{name}"
    s3.upload_pairs(folder, range(files), url)
    return folder, url, samples


def test_a_run_streamed_from_a_bucket_equals_the_same_files_streamed_from_a_folder(pipeline, s3):
    folder, url, samples = _daq_files(pipeline, s3, "same-files", files=6, seed=21)
    common = ("--as-fast-as-possible", "--n-fft", str(N_FFT))

    pipeline.produce("from-folder", "--source", "directory", "--directory", str(folder),
                     "--run-id", "from-folder", *common)  # fmt: skip
    pipeline.produce("from-bucket", "--source", "s3", "--bucket-url", url,
                     "--run-id", "from-bucket", *common, **s3.env())  # fmt: skip
    outputs = pipeline.collect({"from-folder": 6, "from-bucket": 6}, complete=True)

    folder_files, bucket_files = outputs.run_files("from-folder"), outputs.run_files("from-bucket")
    assert sorted(bucket_files) == sorted(folder_files) == list(range(6))
    for number, spectrum in bucket_files.items():
        twin = folder_files[number]
        assert spectrum.count == twin.count == SAMPLES // N_FFT
        # Equal to rounding: a file's chunks are merged in the order they arrive, which differs
        # from one stream of the same files to the next (folder or bucket alike).
        np.testing.assert_allclose(spectrum.mean, twin.mean, rtol=1e-12, atol=0)
        np.testing.assert_allclose(spectrum.std, twin.std, rtol=1e-12, atol=0)
        assert spectrum.daq_time == pytest.approx(twin.daq_time, abs=60)  # upload vs write time
        reference.check_file(spectrum, *samples[number], N_FFT)
    bucket_run, folder_run = outputs.runs["from-bucket"], outputs.runs["from-folder"]
    assert bucket_run.slices == folder_run.slices == 6 * (SAMPLES // N_FFT)
    np.testing.assert_allclose(bucket_run.mean, folder_run.mean, rtol=1e-12, atol=0)
    np.testing.assert_allclose(bucket_run.sem, folder_run.sem, rtol=1e-12, atol=0)


def test_a_producer_killed_mid_bucket_resumes_without_sending_finished_files_again(pipeline, s3):
    files = 12
    _, url, samples = _daq_files(pipeline, s3, "killed", files=files, seed=22)
    options = ("--source", "s3", "--bucket-url", url, "--run-id", "killed",
               "--n-fft", str(N_FFT), "--seconds-per-pair", "0.5")  # fmt: skip
    pipeline.start("producer-killed", "quax-producer", "run", *options, **s3.env())
    deadline = time.monotonic() + 60
    while len(done := _delivered(pipeline, "killed")) < 4:
        assert time.monotonic() < deadline, pipeline.log("producer-killed")
        time.sleep(0.2)
    pipeline.kill("producer-killed")
    finished = _delivered(pipeline, "killed")  # what the progress record says was delivered
    assert done <= finished
    assert len(finished) < files

    pipeline.produce("producer-resumed", *options, **s3.env())

    chunks = Counter(
        chunk.file_number
        for chunk in (RawChunk.from_bytes(value) for _, value in pipeline.topic_records(RAW))
        if chunk.run_id == "killed"
    )
    assert set(chunks) == set(range(files))
    assert {n: chunks[n] for n in finished} == {n: CHUNKS_PER_FILE for n in finished}
    assert f"resuming run killed after {len(finished)} delivered files" in pipeline.log(
        "producer-resumed"
    )
    outputs = pipeline.collect({"killed": files}, complete=True)
    for number, spectrum in outputs.run_files("killed").items():
        reference.check_file(spectrum, *samples[number], N_FFT)
    assert outputs.runs["killed"].slices == files * (SAMPLES // N_FFT)


def _delivered(pipeline: Pipeline, run_id: str) -> set[int]:
    progress = pipeline.progress().get(run_id)
    if progress is None:
        return set()
    return {n for start, stop in zip(progress.files.starts, progress.files.stops, strict=True)
            for n in range(start, stop)}  # fmt: skip
