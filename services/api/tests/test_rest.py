"""The REST API against known spectra: content, binary form, waterfall, errors, probes."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from quax_api import binary
from quax_api.main import create_app
from quax_api.routers import runs as runs_router
from quax_api.settings import ApiSettings

N_FFT = 256


def test_runs_are_listed_with_their_figures(app):
    with TestClient(app) as client:
        runs = client.get("/api/v1/runs").json()
    by_id = {r["run_id"]: r for r in runs}
    assert set(by_id) == {"run-a", "run-b"}
    assert by_id["run-a"]["files"] == 7
    assert by_id["run-a"]["slices"] == 7 * 40
    assert by_id["run-a"]["status"] == "idle"  # emitted long ago (synthetic times)


def test_only_the_newest_runs_are_kept_whole_and_older_ones_stay_listed(builder):
    application = create_app(ApiSettings(recent_files=5, max_runs=2), kafka=False)
    store = application.state.store
    built = {}
    for index, run_id in enumerate(["old", "middle", "new"]):
        spectra, run = builder(run_id, 3, seed=index)
        shift = 1000.0 * index  # each run updated after the previous one
        spectra = [dataclasses.replace(s, emitted_time=s.emitted_time + shift) for s in spectra]
        run = dataclasses.replace(run, emitted_time=run.emitted_time + shift)
        built[run_id] = run
        for spectrum in spectra:
            store.add_file(spectrum)
        store.add_run(run)
    application.state.ready.set()

    assert store.run_ids() == ["middle", "new"]
    # Replayed records of the old run (a restart reads the topics again) stay headlines.
    assert not store.add_run(built["old"])
    assert store.run_ids() == ["middle", "new"]
    with TestClient(application) as client:
        listed = {r["run_id"]: r for r in client.get("/api/v1/runs").json()}
        gone = client.get("/api/v1/runs/old")
        kept = client.get("/api/v1/runs/new")
    assert set(listed) == {"old", "middle", "new"}
    assert (listed["old"]["kept"], listed["new"]["kept"]) == (False, True)
    assert (listed["old"]["files"], listed["old"]["slices"]) == (3, 120)
    assert listed["old"]["candidates"] == built["old"].candidate_count
    assert gone.status_code == 404
    assert "older than the runs whose spectra are kept" in gone.json()["detail"]
    assert kept.status_code == 200

    # A newer update of the old run brings it back whole, and the least recent goes.
    newer = dataclasses.replace(built["old"], slices=121, emitted_time=1e10)
    assert store.add_run(newer)
    assert store.run_ids() == ["new", "old"]
    assert store.is_headline_only("middle")


def test_run_json_and_binary_carry_the_same_numbers(app, builder):
    _, expected = builder("run-a", 7, seed=len("run-a") + 7)
    with TestClient(app) as client:
        as_json = client.get("/api/v1/runs/run-a")
        as_binary = client.get("/api/v1/runs/run-a", params={"format": "binary"})
    assert as_json.headers["content-type"] == "application/json"
    document = as_json.json()
    np.testing.assert_array_equal(document["mean"], expected.mean)
    assert as_binary.headers["content-type"] == binary.MEDIA_TYPE
    header, arrays = binary.decode(as_binary.content)
    assert (header["n_fft"], header["slices"], header["f_lo_hz"]) == (N_FFT, 280, 9.5e9)
    for name, values in (("mean", document["mean"]), ("sem", document["sem"])):
        np.testing.assert_array_equal(arrays[name], np.asarray(values, dtype=np.float32))
    matched = np.array([np.nan if v is None else v for v in document["analysis"]["matched_sigma"]])
    np.testing.assert_array_equal(arrays["matched_sigma"], matched.astype(np.float32))


def test_files_are_the_newest_kept_and_one_file_reads_back(app, builder):
    spectra, _ = builder("run-a", 7, seed=len("run-a") + 7)
    with TestClient(app) as client:
        files = client.get("/api/v1/runs/run-a/files").json()
        one = client.get("/api/v1/runs/run-a/files/4").json()
        raw = client.get("/api/v1/runs/run-a/files/4", params={"format": "binary"}).content
    assert [f["file_number"] for f in files] == [2, 3, 4, 5, 6]  # recent_files=5
    assert all(f["complete"] and f["count"] == 40 for f in files)
    assert files[0]["latency_seconds"] == pytest.approx(0.01)
    np.testing.assert_array_equal(one["std"], spectra[4].std)
    _, arrays = binary.decode(raw)
    np.testing.assert_array_equal(arrays["std"], spectra[4].std.astype(np.float32))


def test_a_later_revision_of_a_file_replaces_it_and_an_older_one_does_not(app, builder):
    spectra, _ = builder("run-a", 7, seed=len("run-a") + 7)
    store = app.state.store
    revised = dataclasses.replace(spectra[5], revision=2, late_chunks=2, count=39)
    assert store.add_file(revised)
    assert not store.add_file(dataclasses.replace(spectra[5], revision=1))
    assert not store.add_file(revised)  # the same revision again: a redelivery
    with TestClient(app) as client:
        files = {f["file_number"]: f for f in client.get("/api/v1/runs/run-a/files").json()}
        one = client.get("/api/v1/runs/run-a/files/5").json()
    assert (files[5]["revision"], files[5]["late_chunks"], files[5]["count"]) == (2, 2, 39)
    assert (one["revision"], one["count"], one["complete"]) == (2, 39, False)
    assert (files[4]["revision"], files[4]["late_chunks"]) == (0, 0)


@pytest.mark.parametrize("decimate", [1, 4, 7])
def test_waterfall_rows_are_decimated_means(app, builder, decimate):
    spectra, _ = builder("run-a", 7, seed=len("run-a") + 7)
    with TestClient(app) as client:
        fall = client.get(
            "/api/v1/runs/run-a/waterfall", params={"last": 3, "decimate": decimate}
        ).json()
    assert fall["file_numbers"] == [4, 5, 6]
    usable = N_FFT - N_FFT % decimate
    expected = np.array([s.mean[:usable].reshape(-1, decimate).mean(axis=1) for s in spectra[4:]])
    np.testing.assert_allclose(fall["rows"], expected, rtol=1e-12)
    assert len(fall["frequency_hz"]) == usable // decimate


@pytest.mark.parametrize(
    ("path", "code", "words"),
    [
        ("/api/v1/runs/nope", 404, "unknown run"),
        ("/api/v1/runs/run-a/files/99", 404, "not kept"),
        ("/api/v1/runs/run-a/files/-1", 422, "greater than or equal"),
        ("/api/v1/runs/run-a/files/x", 422, "integer"),
        ("/api/v1/runs/run-a?format=xml", 422, "json"),
        ("/api/v1/runs/run-a/waterfall?last=0", 422, "greater than or equal"),
        ("/api/v1/runs/run-a/waterfall?decimate=100000", 422, "less than or equal"),
        ("/api/v1/runs/run-b/waterfall?decimate=256", 200, ""),
    ],
)
def test_bad_requests_get_a_clear_4xx(app, path, code, words):
    with TestClient(app) as client:
        response = client.get(path)
    assert response.status_code == code, response.text
    assert words in json.dumps(response.json())


def test_a_waterfall_of_too_many_cells_is_refused_with_what_to_ask_instead(app, monkeypatch):
    monkeypatch.setattr(runs_router, "MAX_WATERFALL_CELLS", 3 * N_FFT)
    with TestClient(app) as client:
        too_many = client.get("/api/v1/runs/run-a/waterfall", params={"last": 4})
        fewer = client.get("/api/v1/runs/run-a/waterfall", params={"last": 3})
        coarser = client.get("/api/v1/runs/run-a/waterfall", params={"last": 5, "decimate": 2})
    assert too_many.status_code == 422
    assert "4 files of 256 columns are 1024 cells, more than 768" in too_many.json()["detail"]
    assert (fewer.status_code, len(fewer.json()["rows"])) == (200, 3)
    assert (coarser.status_code, len(coarser.json()["rows"][0])) == (200, N_FFT // 2)


def test_probes_and_metrics():
    application = create_app(ApiSettings(), kafka=False)
    with TestClient(application) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").status_code == 503
        application.state.ready.set()
        assert client.get("/readyz").json() == {"status": "ready"}
        metrics = client.get("/metrics/").text
        assert "quax_api_websocket_clients" in metrics
        assert client.get("/openapi.json").json()["info"]["title"] == "quax-stream API"


def test_dead_letters_are_counted_for_the_run_their_key_names(app):
    store = app.state.store
    for key in (b"run-a/00003", b"run-a", b"garbage", None):
        store.add_reject(key)
    with TestClient(app) as client:
        runs = {r["run_id"]: r for r in client.get("/api/v1/runs").json()}
    assert runs["run-a"]["rejects"] == 2
    assert runs["run-b"]["rejects"] == 0
