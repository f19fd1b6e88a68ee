"""What a template may hold and print: missing values, yearly dates, and the sandbox's limits.

A customer's empty field is :func:`missing` (falsy; an error naming the field when
printed); every printed value passes :func:`printable` (text, numbers and dates only —
never "None", a list, a function or a control character); a template may make at most
:data:`MAX_MAIL_CHARS` for one customer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Undefined, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment


class Missing(StrictUndefined):
    """A value this customer does not have (no company, a one-time buyer's rhythm).

    Falsy, so ``{% if customer.company %}`` and ``{{ customer.company or 'your team' }}``
    work, and ``| default(...)`` replaces it; printing it, doing sums with it or reading
    from it is an error that names the field — never "None" or a blank in a customer's mail.
    """

    __slots__ = ()

    # StrictUndefined makes each of these raise; a missing value is empty and falsy instead.
    def __bool__(self) -> bool:  # type: ignore[override]
        return False

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:  # type: ignore[override]
        return 0

    def __contains__(self, item: object) -> bool:  # type: ignore[override]
        return False

    def __eq__(self, other: object) -> bool:  # type: ignore[override]
        return other is None or isinstance(other, Missing)

    def __ne__(self, other: object) -> bool:  # type: ignore[override]
        return not self.__eq__(other)

    def __hash__(self) -> int:  # type: ignore[override]
        return 0

    __round__ = __trunc__ = __floor__ = __ceil__ = StrictUndefined._fail_with_undefined_error


@lru_cache(maxsize=256)
def missing(name: str) -> Missing:
    """The stand-in for an empty ``name`` (``customer.company``) in a template context.

    One per name, shared: it holds nothing about the customer, and every mail asks.
    """
    return Missing(
        hint=(
            f"{name} is empty for some customers (this one has none): put it inside "
            f"{{% if {name} is defined %}}…{{% endif %}}, or write "
            f"{{{{ {name} | default('…') }}}}"
        ),
        name=name,
    )


def printable(value: Any) -> Any:
    # Every {{ … }} passes here: what reaches a mail is text, a number or a date — never
    # "None", a Python list, a function or a control character, whatever produced it.
    if value is None:
        raise UndefinedError(
            "a value printed here is empty (None): guard it with {% if … %} or give a "
            "fallback with `or '…'`"
        )
    if isinstance(value, str):
        return _CONTROL.sub("", value) if _CONTROL.search(value) else value
    if isinstance(value, Undefined | bool | int | date | Yearly):  # Undefined: as its kind says
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"a number printed here is {value}: check the sum before it")
        return value
    if isinstance(value, Decimal):
        return value
    kind = type(value).__name__
    raise ValueError(
        f"prints a Python {kind}, not text: print its parts one by one "
        "(a {% for %} over a list, .label and .date of a date)"
    )


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # never wanted in a mail


MAX_MAIL_CHARS = 1_000_000  # what one template may make for one customer


class TooLarge(Exception):
    """A template made more than :data:`MAX_MAIL_CHARS` (raised while it runs)."""


def within_budget(chunks: Iterator[str]) -> str:
    # Rendered piece by piece so a template that would make gigabytes stops at the limit,
    # before it has taken the memory.
    made: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_MAIL_CHARS:
            raise TooLarge
        made.append(chunk)
    return "".join(made)


def is_none(value: Any) -> bool:
    return value is None or isinstance(value, Missing)


class Refused(SecurityError):
    """Something a template asked for that a mail must not do (a link to javascript:)."""


class Sandbox(SandboxedEnvironment):
    """Jinja2's sandbox, where a text or list multiplied past a mail's size stops at once
    (``{{ 'word ' * 10**9 }}`` would take gigabytes before anything else could)."""

    intercepted_binops = frozenset(["*"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * max(times, 0) > MAX_MAIL_CHARS:
                    raise TooLarge
        return super().call_binop(context, operator, left, right)


class Yearly:
    """A yearly date whose year is unknown or private (a birthday): it formats without one."""

    __slots__ = ("day", "month")

    def __init__(self, month: int, day: int) -> None:
        self.month, self.day = month, day

    def strftime(self, fmt: str) -> str:
        """Format like a date, leaving the year (and what joins it to the rest) out; a
        weekday or a whole-date form would be made up, so they are refused."""
        if _INVENTED.search(fmt):
            raise ValueError(
                f"{fmt!r} needs a year this date does not have (a birthday, or a yearly "
                "date of unknown year): use %d and %B, or .next for the coming one"
            )
        bare = _YEAR.sub("", fmt).strip(" ,./-")
        return date(2000, self.month, self.day).strftime(bare or "%d %B")

    def __str__(self) -> str:
        return self.strftime("%d %B")


_YEAR = re.compile(r"[\s,./-]*%[Yy]|%[Yy][\s,./-]*")
_INVENTED = re.compile(r"%[aAwuUWVjcxFDGgCs]")


def format_date(value: Any, fmt: str = "%d %B %Y") -> str:
    if isinstance(value, Missing):
        return str(value)  # raises, naming the field
    if not hasattr(value, "strftime"):
        raise ValueError(f"the date filter needs a date, not {value!r}")
    return str(value.strftime(fmt))
