"""The producer process: logging, metrics endpoint, progress, signals and the exit status."""

from __future__ import annotations

import asyncio
import contextlib
import sys

import structlog
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, start_http_server

from quax_producer.display import show_progress
from quax_producer.metrics import Metrics
from quax_producer.settings import ProducerSettings
from quax_producer.shutdown import Shutdown
from quax_producer.stream import MissingTopicError, RunRefusedError, stream
from quaxspec.daq import DaqFileError
from quaxspec.logs import configure_logging
from quaxspec.topics import RAW

__all__ = ["run"]

_log = structlog.get_logger(__name__)


def run(settings: ProducerSettings) -> int:
    """Stream until the source ends or a signal stops it; the exit status (0 when all went well)."""
    configure_logging(settings.logging, service="producer")
    metrics = Metrics(registry=CollectorRegistry())
    if settings.metrics_port:
        start_http_server(settings.metrics_port, registry=metrics.registry)
        _log.info("Serving Prometheus metrics.", port=settings.metrics_port)
    show = settings.progress if settings.progress is not None else sys.stderr.isatty()
    try:
        asyncio.run(_main(settings, metrics=metrics, show=show))
    except KafkaError as error:
        _log.error(
            "Kafka failed; the producer stops.",
            error=str(error),
            bootstrap_servers=settings.kafka.bootstrap_servers,
            topic=settings.kafka.topic(RAW),
        )
        return 1
    except MissingTopicError as error:
        _log.error("A topic is missing; the producer stops.", error=str(error))
        return 1
    except RunRefusedError as error:
        _log.error("The run cannot take these files; the producer stops.", error=str(error))
        return 2
    except DaqFileError as error:
        _log.error("The DAQ source cannot be read; the producer stops.", error=str(error))
        return 1
    return 0


async def _main(settings: ProducerSettings, *, metrics: Metrics, show: bool) -> None:
    stop = asyncio.Event()
    streaming = asyncio.create_task(stream(settings, metrics=metrics, stop=stop))
    display = (
        show_progress(metrics, total_files=settings.files) if show else contextlib.nullcontext()
    )
    with Shutdown(stop=stop, task=streaming):
        async with display:
            try:
                await streaming
            except asyncio.CancelledError:
                if not streaming.cancelled():
                    raise  # we were cancelled ourselves, not stopped by a second signal
    _log.info(
        "The producer has stopped.",
        files=int(metrics.value("quax_producer_files_total")),
        bytes=int(metrics.value("quax_producer_bytes_total")),
    )
