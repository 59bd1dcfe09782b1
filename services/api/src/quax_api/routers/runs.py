"""Runs, their cumulative spectra, their files and the waterfall of recent files."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from quax_api import binary
from quax_api.deps import ArchiveDep, StoreDep
from quax_api.store import RunHeadline, RunState
from quaxspec.spectra import FileSpectrum, RunSpectrum

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])

RunId = Annotated[str, Path(min_length=1, max_length=255, description="The run id.")]
FileNumber = Annotated[int, Path(ge=0, le=2**32 - 1, description="The DAQ file number.")]
Format = Annotated[
    Literal["json", "binary"],
    Query(description="json (float64 numbers) or binary (float32 arrays, see docs/api.md)."),
]
#: A run whose last update is older than this is reported idle.
LIVE_SECONDS = 60.0


class RunSummary(BaseModel):
    """One run at a glance."""

    run_id: str
    status: Literal["live", "idle", "archived"] = Field(
        description=f"live: updated in the last {LIVE_SECONDS:.0f} s; archived: no longer "
        "followed from Kafka (its records have left the retention, or it is older than the "
        "runs kept in memory): served from the archive"
    )
    files: int
    incomplete_files: int
    slices: int
    duplicates: int
    late_chunks: int = Field(description="Chunks merged into files after they were closed.")
    dropped_late_chunks: int = Field(
        description="Chunks of closed files no longer kept for late data: slices lost."
    )
    awaiting_files: int = Field(description="Files closed incomplete that still take late chunks.")
    rejects: int = Field(description="Dead-letter records whose Kafka key names this run.")
    kept: bool = Field(
        description="Whether its spectra are in memory (the newest max_runs runs are); "
        "of older runs only these figures are kept, and their spectra come from the archive "
        "if one is configured."
    )
    first_daq_time: float | None
    last_daq_time: float | None
    last_file: int
    emitted_time: float
    radiometer_ratio: float | None
    candidates: int
    f_lo_hz: float
    n_fft: int


class FileSummary(BaseModel):
    """One file of a run at a glance."""

    file_number: int
    complete: bool
    revision: int = Field(description="0 when first emitted; +1 for each late chunk merged.")
    count: int
    expected_count: int
    duplicates: int
    late_chunks: int
    daq_time: float
    emitted_time: float
    latency_seconds: float = Field(description="emitted_time − daq_time")


class Waterfall(BaseModel):
    """The most recent file spectra of a run, as rows (oldest first), optionally decimated."""

    run_id: str
    file_numbers: list[int]
    daq_times: list[float]
    frequency_hz: list[float] = Field(description="Centre of each (decimated) bin.")
    decimation: int
    rows: list[list[float | None]] = Field(description="Mean PSD per file (V²/Hz).")


@router.get("", summary="List the runs")
async def list_runs(store: StoreDep, archive: ArchiveDep) -> list[RunSummary]:
    """Every run with a cumulative spectrum, newest update first, archived ones included."""
    summaries = {
        headline.run_id: _summary(
            headline,
            rejects=store.rejects(headline.run_id),
            kept=not store.is_headline_only(headline.run_id),
        )
        for headline in store.headlines()
    }
    for headline in await archive.headlines() if archive is not None else []:
        known = summaries.get(headline.run_id)
        if known is None or (not known.kept and known.slices <= headline.slices):
            summaries[headline.run_id] = _summary(
                headline, rejects=store.rejects(headline.run_id), kept=False, archived=True
            )
    return sorted(summaries.values(), key=lambda s: -s.emitted_time)


@router.get(
    "/{run_id}",
    summary="A run's cumulative spectrum and its analysis",
    responses={200: {"content": {binary.MEDIA_TYPE: {}}}, 404: {"description": "Unknown run."}},
)
async def get_run(
    run_id: RunId, store: StoreDep, archive: ArchiveDep, format: Format = "json"
) -> Response:
    """The quax.run-spectrum/1 document (docs/messages.md), or its binary form."""
    run = (await _state(store, archive, run_id)).run
    if run is None:
        raise HTTPException(404, f"run {run_id!r} has no cumulative spectrum yet")
    if format == "json":
        return Response(run.to_bytes(), media_type="application/json")
    header = _axis(run) | {
        "kind": "run",
        "run_id": run.run_id,
        "slices": run.slices,
        "files": run.files,
        "radiometer_ratio": _finite(run.radiometer_ratio),
    }
    arrays = {
        "mean": run.mean,
        "sem": run.sem,
        "baseline": run.baseline,
        "excess_sigma": run.excess_sigma,
        "matched_sigma": run.matched_sigma,
    }
    return Response(binary.encode(header, arrays), media_type=binary.MEDIA_TYPE)


@router.get(
    "/{run_id}/files",
    summary="The files kept for a run",
    responses={404: {"description": "Unknown run."}},
)
async def list_files(run_id: RunId, store: StoreDep, archive: ArchiveDep) -> list[FileSummary]:
    """The most recent file spectra of the run (oldest first)."""
    state = await _state(store, archive, run_id)
    return [_file_summary(state.files[n]) for n in state.file_numbers()]


@router.get(
    "/{run_id}/files/{file_number}",
    summary="One file's spectrum",
    responses={
        200: {"content": {binary.MEDIA_TYPE: {}}},
        404: {"description": "Unknown run or file."},
    },
)
async def get_file(
    run_id: RunId,
    file_number: FileNumber,
    store: StoreDep,
    archive: ArchiveDep,
    format: Format = "json",
) -> Response:
    """The quax.file-spectrum/1 document (docs/messages.md), or its binary form.

    A file older than those kept in memory is read from the archive, if there is one.
    """
    spectrum = (await _state(store, archive, run_id)).files.get(file_number)
    if spectrum is None and archive is not None:
        spectrum = await archive.file(run_id, file_number)
    if spectrum is None:
        raise HTTPException(
            404, f"file {file_number} of run {run_id!r} is not kept (or not yet emitted)"
        )
    if format == "json":
        return Response(spectrum.to_bytes(), media_type="application/json")
    header = _axis(spectrum) | {
        "kind": "file",
        "run_id": run_id,
        "file_number": file_number,
        "count": spectrum.count,
        "expected_count": spectrum.expected_count,
        "revision": spectrum.revision,
        "daq_time": spectrum.daq_time,
    }
    arrays = {
        "mean": spectrum.mean,
        "std": spectrum.std,
        "spectral_kurtosis": spectrum.spectral_kurtosis,
    }
    return Response(binary.encode(header, arrays), media_type=binary.MEDIA_TYPE)


#: Cells (files × columns) one waterfall response may hold: ~5 MB of JSON. The dashboard
#: asks for 60 files of 768 columns (46,080).
MAX_WATERFALL_CELLS = 250_000


@router.get(
    "/{run_id}/waterfall",
    summary="Recent file spectra as rows",
    response_model=Waterfall,
    responses={
        404: {"description": "Unknown run."},
        422: {"description": "Too many cells: ask for fewer files or decimate more."},
    },
)
async def waterfall(
    run_id: RunId,
    store: StoreDep,
    archive: ArchiveDep,
    last: Annotated[int, Query(ge=1, le=1000, description="How many of the newest files.")] = 60,
    decimate: Annotated[
        int, Query(ge=1, le=256, description="Average this many adjacent bins.")
    ] = 1,
) -> Response:
    """Rows of mean PSD, oldest first; bins averaged in groups of ``decimate``.

    At most MAX_WATERFALL_CELLS cells (files × columns); the rows are computed and encoded
    off the event loop, so that large requests do not hold up the probes and the feed.
    """
    state = await _state(store, archive, run_id)
    numbers = state.file_numbers()[-last:]
    spectra = [state.files[n] for n in numbers]
    if not spectra:
        raise HTTPException(404, f"run {run_id!r} has no file spectra kept")
    n_fft = spectra[0].n_fft
    if decimate > n_fft:
        raise HTTPException(422, f"decimate {decimate} is larger than the {n_fft} bins")
    cells = len(spectra) * (n_fft // decimate)
    if cells > MAX_WATERFALL_CELLS:
        raise HTTPException(
            422,
            f"{len(spectra)} files of {n_fft // decimate} columns are {cells} cells, more than "
            f"{MAX_WATERFALL_CELLS}: ask for fewer files (last) or average more bins (decimate)",
        )
    body = await run_in_threadpool(_waterfall_json, run_id, spectra, decimate)
    return Response(body, media_type="application/json")


def _waterfall_json(run_id: str, spectra: list[FileSpectrum], decimate: int) -> bytes:
    n_fft = spectra[0].n_fft
    usable = n_fft - n_fft % decimate
    rows = (
        np.array([s.mean[:usable] for s in spectra])
        .reshape(len(spectra), -1, decimate)
        .mean(axis=2)
    )
    frequency = spectra[0].frequency_hz[:usable].reshape(-1, decimate).mean(axis=1)
    document = Waterfall(
        run_id=run_id,
        file_numbers=[s.file_number for s in spectra],
        daq_times=[s.daq_time for s in spectra],
        frequency_hz=frequency.tolist(),
        decimation=decimate,
        rows=[[_finite(v) for v in row] for row in rows.tolist()],
    )
    return document.model_dump_json().encode()


async def _state(store: StoreDep, archive: ArchiveDep, run_id: str) -> RunState:
    state = store.state(run_id)
    if state is None and archive is not None:
        state = await archive.state(run_id)
    if state is None and store.is_headline_only(run_id):
        raise HTTPException(
            404,
            f"run {run_id!r} is older than the runs whose spectra are kept in memory "
            "(QUAX_API_MAX_RUNS); its figures are in the run list",
        )
    if state is None:
        raise HTTPException(404, f"unknown run {run_id!r}")
    return state


def _summary(run: RunHeadline, *, rejects: int, kept: bool, archived: bool = False) -> RunSummary:
    live = time.time() - run.emitted_time < LIVE_SECONDS
    return RunSummary(
        run_id=run.run_id,
        kept=kept,
        status="archived" if archived else "live" if live else "idle",
        files=run.files,
        incomplete_files=run.incomplete_files,
        slices=run.slices,
        duplicates=run.duplicates,
        late_chunks=run.late_chunks,
        dropped_late_chunks=run.dropped_late_chunks,
        awaiting_files=run.awaiting_files,
        rejects=rejects,
        first_daq_time=_finite(run.first_daq_time),
        last_daq_time=_finite(run.last_daq_time),
        last_file=run.last_file,
        emitted_time=run.emitted_time,
        radiometer_ratio=_finite(run.radiometer_ratio),
        candidates=run.candidate_count,
        f_lo_hz=run.f_lo,
        n_fft=run.n_fft,
    )


def _file_summary(spectrum: FileSpectrum) -> FileSummary:
    return FileSummary(
        file_number=spectrum.file_number,
        complete=spectrum.complete,
        revision=spectrum.revision,
        count=spectrum.count,
        expected_count=spectrum.expected_count,
        duplicates=spectrum.duplicates,
        late_chunks=spectrum.late_chunks,
        daq_time=spectrum.daq_time,
        emitted_time=spectrum.emitted_time,
        latency_seconds=spectrum.emitted_time - spectrum.daq_time,
    )


def _axis(spectrum: FileSpectrum | RunSpectrum) -> dict[str, Any]:
    return {
        "n_fft": spectrum.n_fft,
        "fs_hz": spectrum.fs,
        "f_lo_hz": spectrum.f_lo,
        "units": "V^2/Hz",
    }


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None
