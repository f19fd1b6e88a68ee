"""Control characters that came from data, made visible before they reach a terminal.

A customer's name holding ``ESC[2J`` (clear the screen) or ``ESC]0;…BEL`` (retitle the
window) would act on the terminal of whoever reads it: in a command's table
(:mod:`reengage.cli.terminal`) or in a log line rendered for a person (:mod:`reengage.logs`).
Both show each such character as a visible escape (``\\x1b``) instead.
"""

from __future__ import annotations

import re

# C0 but tab and line feed (a line break is how printed text ends), DEL, and C1 (the
# one-byte forms of ESC [ and ESC ], which some terminals obey too).
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """``text`` with each control character (but tab and line feed) as a visible ``\\xNN``."""
    if text.isprintable():  # the common case, at C speed
        return text
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
