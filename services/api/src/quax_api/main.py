"""The FastAPI application: state, the Kafka follower, routers, metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import make_asgi_app

from quax_api.archived import ArchivedRuns
from quax_api.consumer import follow_forever
from quax_api.hub import Hub
from quax_api.routers import health, runs, ws
from quax_api.settings import ApiSettings
from quax_api.store import SpectrumStore

__all__ = ["STATIC", "create_app"]

#: The dashboard: index.html, app.js, style.css, and vendor/ (uPlot, copied from npm).
STATIC = Path(__file__).parent / "static"


def create_app(settings: ApiSettings, *, kafka: bool = True) -> FastAPI:
    """The application; with ``kafka=False`` its state is filled by the caller (tests)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if kafka:
            state = app.state
            task = asyncio.create_task(
                follow_forever(settings, store=state.store, hub=state.hub, ready=state.ready)
            )
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="quax-stream API",
        version="1",
        summary="Live spectra of the QUAX axion haloscope: runs, files, analysis.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.origins = frozenset(settings.allowed_origins)
    app.state.store = SpectrumStore(recent_files=settings.recent_files, max_runs=settings.max_runs)
    archive = settings.archive_s3_url or settings.archive_directory
    app.state.archive = (
        None
        if archive is None
        else ArchivedRuns(
            archive,
            s3=settings.s3,
            recent_files=settings.recent_files,
            cached_runs=settings.archive_cached_runs,
        )
    )
    app.state.hub = Hub(maxsize=settings.client_queue)
    app.state.ready = asyncio.Event()
    app.include_router(health.router)
    app.include_router(runs.router)
    app.include_router(ws.router)
    app.mount("/metrics", make_asgi_app())
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app
