"""structlog set-up: JSON lines for machines, a pretty console for people.

Event names are stable snake_case (``import_finished``); context is bound with
``structlog.contextvars.bound_contextvars`` so every line of a unit of work carries it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from reengage.config import LogFormat

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(
    level: str = "info", fmt: LogFormat = LogFormat.AUTO, stream: TextIO | None = None
) -> None:
    """Configure structlog once for the process; logs go to stderr unless ``stream`` is given."""
    out = stream or sys.stderr
    console = fmt is LogFormat.CONSOLE or (fmt is LogFormat.AUTO and out.isatty())
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if console:
        processors.append(structlog.dev.ConsoleRenderer(colors=out.isatty()))
    else:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A logger carrying the module name; lazy, so it follows :func:`configure_logging`.

    Modules create their logger at import time, before the CLI has read the settings, so
    it must not bind to whatever configuration exists at that moment.
    """
    return structlog.get_logger(module=name)
