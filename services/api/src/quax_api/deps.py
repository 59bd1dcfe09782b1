"""FastAPI dependencies: the process-wide objects, as Annotated aliases (for HTTP requests and
WebSockets alike: each takes the connection).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from quax_api.archived import ArchivedRuns
from quax_api.hub import Hub
from quax_api.store import SpectrumStore

__all__ = ["ArchiveDep", "HubDep", "ReadyDep", "StoreDep"]


def _store(connection: HTTPConnection) -> SpectrumStore:
    store: SpectrumStore = connection.app.state.store
    return store


def _archive(connection: HTTPConnection) -> ArchivedRuns | None:
    archive: ArchivedRuns | None = connection.app.state.archive
    return archive


def _hub(connection: HTTPConnection) -> Hub:
    hub: Hub = connection.app.state.hub
    return hub


def _ready(connection: HTTPConnection) -> asyncio.Event:
    ready: asyncio.Event = connection.app.state.ready
    return ready


StoreDep = Annotated[SpectrumStore, Depends(_store)]
ArchiveDep = Annotated[ArchivedRuns | None, Depends(_archive)]
HubDep = Annotated[Hub, Depends(_hub)]
ReadyDep = Annotated[asyncio.Event, Depends(_ready)]
