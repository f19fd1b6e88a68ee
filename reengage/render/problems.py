"""A template's failure, located (file and line) and explained for the marketer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import MAX_RANGE

from reengage.render.limits import MAX_MAIL_CHARS, TooLarge, TooSlow


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
        if any(said in message for said in _SAYS_WHAT_TO_DO):
            return message
        if "has no element" in message:
            return (
                f"{message}: the list is empty or shorter for some customers; check it "
                "first with {% if … %} or loop over it with {% for %}"
            )
        if "sequence was empty" in message:  # | min, | max of an empty list
            return (
                "a list here is empty for this customer, so a filter taking one of its items "
                "has none to give: check the list first with {% if … %}"
            )
        names = [f"{k}()" if callable(v) else k for k, v in context.items()]
        usable = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
        return f"{message}: templates can use {usable}"
    if isinstance(exc, SecurityError):
        return f"not allowed in a template: {exc}"
    if isinstance(exc, OverflowError):
        if "MAX_RANGE" in str(exc):
            return (
                f"range() here is too large: a template may count to {MAX_RANGE} at most; "
                "loop over fewer items"
            )
        return "a number or date here is too large to work out: check the sum that makes it"
    if isinstance(exc, ZeroDivisionError):
        return "divides by zero for this customer: check the value first with {% if … %}"
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        # Python's own words name sys.set_int_max_str_digits(), no help to a marketer.
        return (
            f"a number here is too large to print (over {sys.get_int_max_str_digits()} "
            "digits): check the sum that makes it"
        )
    if isinstance(exc, TypeError | ValueError):
        return f"cannot be worked out for this customer ({exc}): check the values' kinds"
    return f"fails with {type(exc).__name__}: {exc}"


# Messages of ours that already say what to change.
_SAYS_WHAT_TO_DO = (
    "is empty for some customers",  # a missing field
    "is empty (None)",  # None printed
    "is empty for this customer",  # | first of an empty list
)


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
