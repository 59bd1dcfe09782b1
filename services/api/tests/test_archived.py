"""Runs served from a Parquet archive (written here with quaxspec.archive, as the archiver does)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from quax_api.main import create_app
from quax_api.settings import ApiSettings
from quaxspec.archive import file_rows_table, run_row_table, run_state_path, spectra_dir, utc_date


def _archive(root: Path, builder, run_id: str, files: int):  # type: ignore[no-untyped-def]
    spectra, run = builder(run_id, files, seed=11)
    directory = spectra_dir(root, run_id, utc_date(spectra[0].daq_time))
    directory.mkdir(parents=True)
    rows = file_rows_table((s, 0, n) for n, s in enumerate(spectra))
    pq.write_table(rows, directory / "part-0-000000000000-000000000009.parquet")
    state = run_state_path(root, run_id)
    state.parent.mkdir(parents=True)
    pq.write_table(run_row_table(run, run.to_bytes(), 0, 10), state)
    return spectra, run


def test_a_run_only_in_the_archive_is_listed_archived_and_served_whole(app, builder, tmp_path):
    spectra, run = _archive(tmp_path, builder, "run-old", 9)
    settings = ApiSettings(recent_files=5, archive_directory=tmp_path)
    application = create_app(settings, kafka=False)
    application.state.store = app.state.store  # run-a and run-b, live from "Kafka"
    application.state.ready.set()

    with TestClient(application) as client:
        listed = {r["run_id"]: r for r in client.get("/api/v1/runs").json()}
        served = client.get("/api/v1/runs/run-old")
        files = client.get("/api/v1/runs/run-old/files").json()
        oldest = client.get("/api/v1/runs/run-old/files/0")
        missing = client.get("/api/v1/runs/run-old/files/9")
        waterfall = client.get("/api/v1/runs/run-old/waterfall?last=3").json()
        unknown = client.get("/api/v1/runs/run-never")

    assert listed["run-old"]["status"] == "archived"
    assert listed["run-old"]["kept"] is False
    assert (listed["run-old"]["files"], listed["run-old"]["slices"]) == (9, 9 * 40)
    assert listed["run-a"]["status"] == "idle"  # live runs are still served from memory
    assert served.content == run.to_bytes()
    assert [f["file_number"] for f in files] == [4, 5, 6, 7, 8]  # the newest recent_files
    assert oldest.content == spectra[0].to_bytes()  # older than the window: read alone
    assert missing.status_code == 404
    assert waterfall["file_numbers"] == [6, 7, 8]
    assert unknown.status_code == 404


def test_without_an_archive_nothing_more_is_listed(app):
    with TestClient(app) as client:
        listed = client.get("/api/v1/runs").json()
    assert {r["status"] for r in listed} <= {"live", "idle"}
