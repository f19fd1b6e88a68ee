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
from reengage.controls import clean

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
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: list[Any] = (
        [_visible_controls, structlog.dev.ConsoleRenderer(colors=out.isatty())]
        if console
        else [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    )
    structlog.configure(
        processors=shared + renderer,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    _route_stdlib_logging(out, shared, renderer, _LEVELS.get(level, logging.INFO))
    if not console:
        sys.excepthook = _log_uncaught  # a crash is one JSON line too, not a bare traceback


def _visible_controls(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """A person's console shows a control character in a logged value (an inbound mail's
    address, a customer's name) as ``\\x1b``, never sends it to their terminal. JSON lines
    escape them already; the console renderer writes strings as they are."""
    return {key: clean(value) if isinstance(value, str) else value for key, value in event.items()}


def _route_stdlib_logging(out: TextIO, shared: list[Any], renderer: list[Any], level: int) -> None:
    # Libraries (APScheduler, asyncio, uvicorn, SQLAlchemy) log through the standard library:
    # their lines, tracebacks included, are rendered like ours (JSON off a terminal).
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "reengage", False)]:
        root.removeHandler(old)  # ours from an earlier call; others' (pytest's) stay
    handler.reengage = True  # type: ignore[attr-defined]  # marks the handler as ours
    root.addHandler(handler)
    root.setLevel(max(level, logging.INFO))  # library debug chatter stays out unless asked
    # Routine chatter stays out too: Alembic's "Context impl" on every command, aiosmtpd's
    # line per SMTP command (with the addresses). Their warnings and errors come through.
    for chatty in ("alembic", "mail.log"):
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))
    # APScheduler's warnings ("skipped: maximum number of running instances reached", "was
    # missed by") are about a pass longer than its interval: routine here, the next tick
    # finds the work. Its errors (a job that raised) still come through.
    logging.getLogger("apscheduler").setLevel(max(level, logging.ERROR))


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: Any) -> None:
    structlog.get_logger(module="reengage").critical(
        "uncaught_exception", exc_info=(kind, error, trace)
    )


def get_logger(name: str) -> Any:
    """A logger carrying the module name; lazy, so it follows :func:`configure_logging`.

    Modules create their logger at import time, before the CLI has read the settings, so
    it must not bind to whatever configuration exists at that moment.
    """
    return structlog.get_logger(module=name)
