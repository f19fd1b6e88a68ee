"""A template's failure, located (file and line) and explained for the marketer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError

from reengage.render.values import MAX_MAIL_CHARS, TooLarge, TooSlow


def subject_problem_of(exc: Exception, context: dict[str, Any]) -> str:
    if isinstance(exc, TemplateSyntaxError):
        return f"syntax error: {exc.message}"
    return explain(exc, context)


def explain(exc: Exception, context: dict[str, Any]) -> str:
    if isinstance(exc, TooSlow):
        return (
            f"takes over {exc.seconds:g} seconds to make for this customer (a loop that runs "
            "too long, or a macro that calls itself over and over): loop over fewer items"
        )
    if isinstance(exc, TooLarge):
        return (
            f"makes a mail over {MAX_MAIL_CHARS // 1_000_000} MB for this customer: mail "
            "servers refuse mail that large (and Gmail clips HTML over 102 KB); keep it short"
        )
    if isinstance(exc, UndefinedError):
        message = exc.message or "a value is undefined"
        if "is empty for some customers" in message or "is empty (None)" in message:
            return message
        if "has no element" in message:
            return (
                f"{message}: the list is empty or shorter for some customers; check it "
                "first with {% if … %} or loop over it with {% for %}"
            )
        names = [f"{k}()" if callable(v) else k for k, v in context.items()]
        usable = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
        return f"{message}: templates can use {usable}"
    if isinstance(exc, SecurityError):
        return f"not allowed in a template: {exc}"
    if isinstance(exc, OverflowError):
        return f"too large: {exc}"
    if isinstance(exc, ZeroDivisionError):
        return "divides by zero for this customer: check the value first with {% if … %}"
    if isinstance(exc, TypeError | ValueError):
        return f"cannot be worked out for this customer ({exc}): check the values' kinds"
    return f"fails with {type(exc).__name__}: {exc}"


def located(exc: BaseException, fallback: str) -> tuple[str, int]:
    # Jinja2 rewrites tracebacks so template frames carry the template's own file and line;
    # the innermost template frame is where it went wrong (an included file, say).
    tb = exc.__traceback__
    file, line = fallback, 1
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename.endswith(".j2"):
            file, line = code.co_filename, tb.tb_lineno
        tb = tb.tb_next
    return file, line


def line_in(exc: BaseException) -> int:
    return located(exc, "")[1]


def undecodable(root: Path, name: str, exc: UnicodeDecodeError) -> tuple[str | None, int]:
    # The loader does not say which file failed to decode (the one asked for, a layout it
    # extends, a file it includes): the file whose bytes are the ones that failed is it.
    failed = bytes(exc.object)
    candidates = [name, *(str(p.relative_to(root)) for p in sorted(root.rglob("*")))]
    for candidate in candidates:
        try:
            if (root / candidate).is_file() and (root / candidate).read_bytes() == failed:
                return candidate, failed[: exc.start].count(b"\n") + 1
        except OSError:
            continue
    return None, 1
