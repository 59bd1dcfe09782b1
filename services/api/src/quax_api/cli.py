"""Command line of the API: ``quax-api serve``."""

from __future__ import annotations

import typer
import uvicorn

from quax_api.main import create_app
from quax_api.settings import ApiSettings
from quaxspec.logs import configure_logging

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.callback()
def main() -> None:
    """REST, WebSocket spectra and metrics of quax-stream."""


@app.command()
def serve() -> None:
    """Serve on QUAX_API_HOST:QUAX_API_PORT (settings from QUAX_API_* and QUAX_KAFKA_*)."""
    settings = ApiSettings()
    configure_logging(settings.logging, service="api")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
        ws_per_message_deflate=settings.websocket_compression,
    )
