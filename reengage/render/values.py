"""What a template may hold and print: missing values, yearly dates, and the sandbox.

A customer's empty field is :func:`missing` (falsy; an error naming the field when
printed); every printed value passes :func:`printable` (text, numbers and dates only —
never "None", a list, a function or a control character); the :class:`Sandbox` puts every
loop and call on the rendering's clock and stops a product past a mail's size
(the limits themselves are in :mod:`reengage.render.limits`).
"""

from __future__ import annotations

import math
import re
from datetime import date
from decimal import Decimal
from functools import lru_cache, wraps
from pprint import pformat
from typing import Any

from jinja2 import (
    StrictUndefined,
    Undefined,
    UndefinedError,
    nodes,
    pass_eval_context,
)
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import LoopContext
from jinja2.sandbox import SandboxedEnvironment

from reengage.render.limits import _CLOCK, _COUNTED, MAX_MAIL_CHARS, TooLarge, _counted, count_loop


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


EMPTY = (
    "a value printed here is empty (None): guard it with {% if … %} or give a "
    "fallback with `or '…'`"
)


@pass_eval_context  # asks for the context only so Jinja2 never runs it while compiling
def printable(_: EvalContext, value: Any) -> Any:
    # Every {{ … }} passes here: what reaches a mail is text, a number or a date — never
    # "None", a Python list, a function or a control character, whatever produced it.
    # (A finalize Jinja2 may run while compiling sees `{{ none }}` already escaped to the
    # text "None" when autoescaping: it would let it through.)
    if value is None:
        raise UndefinedError(EMPTY)
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


_MAX_DIGITS = 100_000  # no mail prints a number this long (Python prints 4300 digits at most)


def is_none(value: Any) -> bool:
    return value is None or isinstance(value, Missing)


class Refused(SecurityError):
    """Something a template asked for that a mail must not do (a link to javascript:)."""


class Sandbox(SandboxedEnvironment):
    """Jinja2's sandbox, where a text or list multiplied past a mail's size stops at once
    (``{{ 'word ' * 10**9 }}`` would take gigabytes before anything else could), and every
    loop and call is a step on the rendering's clock (:func:`time_limit`)."""

    intercepted_binops = frozenset(["*", "**"])  # and so never worked out while compiling

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        self.filters["pprint"] = pprint_value
        self.filters["first"], self.filters["last"] = first_item, last_item
        for name in _TEXT_FILTERS:
            self.filters[name] = _refusing_none(self.filters[name])
        self.filters[_COUNTED] = count_loop

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        # Every template this environment runs is parsed here: the one asked for, a layout
        # it extends, a file it includes or imports (even one named by customer data), a
        # subject. Each {% for x in items %} then loops over `items | <counted>`, a filter
        # whose name no template can write: none can call, shadow or replace it.
        template = super()._parse(source, name, filename)
        for loop in list(template.find_all(nodes.For)):
            counted = nodes.Filter(loop.iter, _COUNTED, [], [], None, None)
            loop.iter = counted.set_lineno(loop.iter.lineno).set_environment(self)
        for used in list(template.find_all(nodes.Filter)):
            if used.name in ("first", "last"):
                _name_the_list(used)
        return template

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # Every call from a template is a step too (a macro calling itself twice, 30 deep,
        # runs a billion times without a loop), and a recursive loop's `loop(children)`
        # counts the children it loops over.
        clock = _CLOCK.get()
        if clock is not None:
            clock.step()
            if args and isinstance(__obj, LoopContext):
                args = (_counted(args[0], clock), *args[1:])
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * max(times, 0) > MAX_MAIL_CHARS:
                    raise TooLarge
        if isinstance(left, int) and isinstance(right, int):
            # A product or power of whole numbers is worked out in one step, however long
            # it takes (9 ** (9 ** 9) would take hours): one far past any number a mail can
            # print stops before it starts.
            if operator == "*":
                digits = (left.bit_length() + right.bit_length()) * math.log10(2)
            else:
                digits = right * math.log10(abs(left)) if right > 0 and abs(left) > 1 else 0
            if digits > _MAX_DIGITS:
                raise OverflowError(f"a number of over {_MAX_DIGITS} digits")
        return super().call_binop(context, operator, left, right)


class Yearly:
    """A yearly date whose year is unknown or private (a birthday): it formats without one."""

    __slots__ = ("day", "month")

    def __init__(self, month: int, day: int) -> None:
        self.month, self.day = month, day

    def strftime(self, fmt: str) -> str:
        """Format like a date, leaving the year (and what joins it to the rest) out; a
        weekday or a whole-date form would be made up, so they are refused."""

        def directive(found: re.Match[str]) -> str:
            kind = found.group(2)
            if kind in _INVENTED:
                raise ValueError(
                    f"{fmt!r} needs a year this date does not have (a birthday, or a yearly "
                    "date of unknown year): use %d and %B, or .next for the coming one"
                )
            return _NO_YEAR if kind in "Yy" else found.group(0)

        marked = _DIRECTIVE.sub(directive, fmt)
        bare = _AROUND_YEAR.sub("", marked).replace(_NO_YEAR, "").strip(" ,./-")
        # 2000: a leap year, so 29 February formats; no directive left can print it.
        return date(2000, self.month, self.day).strftime(bare or "%d %B")

    def __str__(self) -> str:
        return self.strftime("%d %B")


# One strftime directive: %%, or % with glibc's flags (%-d, %Ey, %Oy…) and its letter.
_DIRECTIVE = re.compile(r"%([-_0^#EO]*)(.?)", re.DOTALL)
_NO_YEAR = "\x00"  # where a year directive was, taken out with what joins it to the rest
_AROUND_YEAR = re.compile(r"[\s,./-]*\x00|\x00[\s,./-]*")
_INVENTED = frozenset("aAwuUWVjcxXFDGgCsz+")  # needs a year or a time the date does not have


def format_date(value: Any, fmt: str = "%d %B %Y") -> str:
    if isinstance(value, Missing):
        return str(value)  # raises, naming the field
    if not hasattr(value, "strftime"):
        raise ValueError(f"the date filter needs a date, not {value!r}")
    return str(value.strftime(fmt))


# Filters that would turn None into the text "None" (`{{ x | default(none) | upper }}`).
_TEXT_FILTERS = (
    "capitalize",
    "center",
    "e",
    "escape",
    "forceescape",
    "format",
    "indent",
    "lower",
    "replace",
    "safe",
    "string",
    "striptags",
    "title",
    "trim",
    "truncate",
    "upper",
    "urlencode",
    "urlize",
    "wordwrap",
)


def _refusing_none(stock: Any) -> Any:
    # The wrapper keeps the filter's marks (pass_environment …): Jinja2 passes the same
    # arguments, the value after the one it marks.
    at = 1 if hasattr(stock, "jinja_pass_arg") else 0

    @wraps(stock)
    def refusing(*args: Any, **kwargs: Any) -> Any:
        if len(args) > at and args[at] is None:
            raise UndefinedError(EMPTY)
        return stock(*args, **kwargs)

    return refusing


def pprint_value(value: Any) -> str:
    """Jinja2's ``pprint``, except that an empty value (None, a missing field), alone or in a
    list, is the same error as printing it — never "None" or "Undefined" in a mail."""
    seen: set[int] = set()
    pending = [value]
    while pending:
        part = pending.pop()
        if part is None:
            raise UndefinedError(EMPTY)
        if isinstance(part, Undefined):
            part._fail_with_undefined_error()  # names the field, as printing it would
        if isinstance(part, list | tuple | set | frozenset | dict) and id(part) not in seen:
            seen.add(id(part))
            pending.extend(part.values() if isinstance(part, dict) else part)
    return pformat(value)


def first_item(seq: Any, list_name: str = "") -> Any:
    """Jinja2's ``first``; of an empty list, a missing value saying which list it was."""
    if isinstance(seq, Missing):
        return seq  # printing it names the field
    for item in seq:
        return item
    return _no_item("first", list_name)


def last_item(seq: Any, list_name: str = "") -> Any:
    """Jinja2's ``last``; of an empty list, a missing value saying which list it was."""
    if isinstance(seq, Missing):
        return seq
    for item in reversed(seq):
        return item
    return _no_item("last", list_name)


def _no_item(which: str, list_name: str) -> Missing:
    # Falsy, and `| default('…')` replaces it, like any missing value.
    guard = f"{{% if {list_name} %}}…{{% endif %}}" if list_name else "{% if … %}"
    return Missing(
        hint=(
            f"{list_name or 'the list'} is empty for this customer, so | {which} has no item "
            f"to give: check it first with {guard}, or give a fallback with "
            f"| {which} | default('…')"
        )
    )


def _name_the_list(used: nodes.Filter) -> None:
    # `customer.interests | first` of an empty list says which list it was (unless the
    # template gave a list_name=… of its own).
    named = _dotted(used.node)
    if named and all(getattr(keyword, "key", None) != "list_name" for keyword in used.kwargs):
        # Jinja2 types a filter's keywords as Pair; its parser makes Keyword nodes.
        keyword = nodes.Keyword("list_name", nodes.Const(named))
        used.kwargs.append(keyword)  # type: ignore[arg-type]


def _dotted(node: nodes.Node | None) -> str:
    # `customer.interests` (or customer['interests']) as the template wrote it; "" for
    # anything else (a filter's result, a sum).
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        inner = _dotted(node.node)
        return f"{inner}.{node.attr}" if inner else ""
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        inner = _dotted(node.node)
        key = node.arg.value
        return f"{inner}.{key}" if inner and isinstance(key, str) and key.isidentifier() else ""
    return ""
