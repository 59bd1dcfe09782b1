"""The live WebSocket feed of file spectra and run updates."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from quax_api.deps import HubDep

__all__ = ["origin_allowed", "router"]

log = structlog.get_logger("quax.api")

router = APIRouter(tags=["live"])


@router.websocket("/ws/v1/spectra")
async def spectra(websocket: WebSocket, hub: HubDep, runs: str | None = None) -> None:
    """Stream updates: ``?runs=a,b`` for some runs, no parameter for all.

    The first message is ``{"type": "hello", "runs": [...] | null, "queue": N}``; then one
    message per emitted file spectrum (``type`` "file") and per run update (``type``
    "run"): ``{"type", "run_id", "data"}``, where ``data`` is the quax.file-spectrum/1 or
    quax.run-spectrum/1 document. A client that reads too slowly loses its oldest queued
    updates; before its next update it gets ``{"type": "dropped", "count": N}``, the total
    it has lost.
    """
    origin = websocket.headers.get("origin")
    if origin is not None and not origin_allowed(
        origin, host=websocket.headers.get("host", ""), allowed=websocket.app.state.origins
    ):
        log.warning("Refused a WebSocket from another origin.", origin=origin[:200])
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="origin not allowed")
        return
    wanted = None if runs is None else frozenset(r.strip() for r in runs.split(","))
    if wanted is not None and any(not r or len(r) > 255 for r in wanted):
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="bad runs parameter")
        return
    await websocket.accept()
    subscription = hub.subscribe(wanted)
    try:
        hello = {
            "type": "hello",
            "runs": sorted(wanted) if wanted else None,
            "queue": subscription.queue.maxsize,
        }
        await websocket.send_text(json.dumps(hello))
        closed = asyncio.ensure_future(_until_closed(websocket))
        reported = 0
        while not closed.done():
            message = asyncio.ensure_future(subscription.queue.get())
            await asyncio.wait({message, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not message.done():
                message.cancel()
                break
            if subscription.dropped > reported:
                reported = subscription.dropped
                await websocket.send_text(json.dumps({"type": "dropped", "count": reported}))
            await websocket.send_text(message.result())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.unsubscribe(subscription)


def origin_allowed(origin: str, *, host: str, allowed: frozenset[str]) -> bool:
    """Whether a browser page from ``origin`` may read the feed.

    Browsers send the page's origin with every WebSocket handshake and do not apply the
    same-origin policy to it, so any web page a user opens could read the feed through
    the user's browser. Pages of the API's own origin (its Host) and of the configured
    origins are allowed; ``*`` allows any. Clients that are not browsers send no Origin.
    """
    if "*" in allowed or origin in allowed:
        return True
    own = urlsplit(origin)
    return own.scheme in ("http", "https") and own.netloc == host


async def _until_closed(websocket: WebSocket) -> None:
    """Return when the client goes away (anything it sends is ignored)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
