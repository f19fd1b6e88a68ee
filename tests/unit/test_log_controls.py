"""A log line rendered for a person never sends a control character from data to their
terminal: an inbound mail's address or a customer's name holding ``ESC]0;…BEL`` would
retitle the window of whoever runs the daemon in it (``REENGAGE_LOG_FORMAT=console``)."""

from __future__ import annotations

import io
import logging
import sys

import structlog

from reengage.config import LogFormat
from reengage.logs import configure_logging


def test_a_console_log_line_shows_control_characters_and_never_sends_them() -> None:
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level, hook = list(root.handlers), root.level, sys.excepthook
    out = io.StringIO()
    try:
        configure_logging("info", LogFormat.CONSOLE, stream=out)
        structlog.get_logger().info("bounce_unmatched", address="x\x1b]0;owned\x07@example.com")
        logging.getLogger("mail.log").error("peer said %s", "\x1b[2Jgone")  # a library's line
    finally:
        structlog.configure(**config)
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        sys.excepthook = hook
    text = out.getvalue()
    assert "\\x1b]0;owned\\x07@example.com" in text
    assert "peer said \\x1b[2Jgone" in text
    assert "\x1b" not in text and "\x07" not in text
