"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from quax_api.deps import ReadyDep

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    """Always 200 while the event loop answers."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The state is restored",
    responses={503: {"description": "Still restoring the runs from Kafka."}},
)
async def readyz(ready: ReadyDep) -> JSONResponse:
    """200 once the runs topic has been read to the end seen at start, 503 before."""
    if ready.is_set():
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "restoring"}, status_code=503)
