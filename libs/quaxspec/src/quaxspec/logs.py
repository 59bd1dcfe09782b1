"""structlog configuration: readable lines in a terminal, JSON lines in deployment."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

import structlog

from quaxspec.settings import LoggingSettings

__all__ = ["RepeatFilter", "configure_logging"]

#: Loggers whose repeated lines are thinned: the Kafka client logs each failed connection
#: attempt, several times a second while a broker is away (thousands of lines an outage).
_CHATTY = ("aiokafka",)


class RepeatFilter(logging.Filter):
    """Lets one line of each kind through per ``interval`` seconds, for the chatty loggers.

    A kind is the logger, the level and the message template (before its arguments). The
    next line let through says how many like it were held back.
    """

    def __init__(
        self,
        *,
        interval: float = 30.0,
        prefixes: tuple[str, ...] = _CHATTY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._interval = interval
        self._prefixes = prefixes
        self._clock = clock
        self._last: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether to write ``record``."""
        if not record.name.startswith(self._prefixes):
            return True
        kind = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        last, held = self._last.get(kind, (-float("inf"), 0))
        if now - last < self._interval:
            self._last[kind] = (last, held + 1)
            return False
        self._last[kind] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like it in the last {self._interval:g} s)"
        return True


def configure_logging(settings: LoggingSettings | None = None, **context: str) -> None:
    """Route structlog and the standard library (Kafka, Faust) through one renderer."""
    settings = settings or LoggingSettings()
    level = logging.getLevelNamesMapping().get(settings.level.upper(), logging.INFO)
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.json_format
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    structlog.contextvars.bind_contextvars(**context)
