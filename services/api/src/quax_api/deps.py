"""FastAPI dependencies: the process-wide objects, as Annotated aliases."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request

from quax_api.archived import ArchivedRuns
from quax_api.hub import Hub
from quax_api.settings import ApiSettings
from quax_api.store import SpectrumStore

__all__ = ["ArchiveDep", "HubDep", "ReadyDep", "SettingsDep", "StoreDep"]


def _store(request: Request) -> SpectrumStore:
    store: SpectrumStore = request.app.state.store
    return store


def _archive(request: Request) -> ArchivedRuns | None:
    archive: ArchivedRuns | None = request.app.state.archive
    return archive


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def _ready(request: Request) -> asyncio.Event:
    ready: asyncio.Event = request.app.state.ready
    return ready


def _settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


StoreDep = Annotated[SpectrumStore, Depends(_store)]
ArchiveDep = Annotated[ArchivedRuns | None, Depends(_archive)]
HubDep = Annotated[Hub, Depends(_hub)]
ReadyDep = Annotated[asyncio.Event, Depends(_ready)]
SettingsDep = Annotated[ApiSettings, Depends(_settings)]
