"""What a template's filters, method calls, ``%`` and ``~`` may do: make no more than a mail
can hold, take no longer than a rendering may, and never turn an empty value into the words
"None" or "Undefined".

Loops and calls are counted on the rendering's clock (``values``); a filter is one step
that can do a great deal of work (``s | list | sort`` over a megabyte, ``replace`` that
multiplies a text a thousandfold). So every filter looks at the clock before and after it
runs, one that would make a value larger than a mail is stopped before it makes it where
its size can be told in advance (``replace``, ``center``, ``indent``, widths in
``format``), and any other that made one is stopped right after.
"""

from __future__ import annotations

import re
from functools import wraps
from typing import Any

from jinja2 import nodes, pass_eval_context
from jinja2.exceptions import UndefinedError
from jinja2.nodes import EvalContext

from reengage.render.limits import _CLOCK, _COUNTED, MAX_MAIL_CHARS, TooLarge
from reengage.render.values import EMPTY, Sandbox, is_none, printable

# A filter name the template language cannot spell: put on every operand of `~`.
_PART = "reengage part"
_WIDE = re.compile(r"\d{7,}")  # a width or precision of a million or more in a format


class GuardedSandbox(Sandbox):
    """:class:`Sandbox` whose filters, ``str.format``, ``%`` and ``~`` are guarded too."""

    intercepted_binops = frozenset(["*", "**", "%"])

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        for name, stock in list(self.filters.items()):
            if name != _COUNTED:
                self.filters[name] = _guarded(name, stock)
        self.filters[_PART] = concat_part

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        template = super()._parse(source, name, filename)
        for joined in list(template.find_all(nodes.Concat)):
            guarded: list[nodes.Expr] = []
            for part in joined.nodes:
                wrapped = nodes.Filter(part, _PART, [], [], None, None)
                wrapped.set_lineno(part.lineno).set_environment(self)
                guarded.append(wrapped)
            joined.nodes = guarded
        return template

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        made = super().call(__context, __obj, *args, **kwargs)
        _after(made)
        return made

    def wrap_str_format(self, value: Any) -> Any:
        # `'{}'.format(x)` and `.format_map(d)`, as the sandbox hands them to a template.
        stock = super().wrap_str_format(value)
        if stock is None:
            return None
        pattern: str = value.__self__

        def formatting(*args: Any, **kwargs: Any) -> Any:
            given = [*args, *kwargs.values()]
            if value.__name__ == "format_map" and args and isinstance(args[0], dict):
                given = list(args[0].values())
            _formatting(pattern, given)
            made = stock(*args, **kwargs)
            _after(made)
            return made

        return formatting

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "%" and isinstance(left, str):
            _formatting(left, list(right) if isinstance(right, tuple) else [right])
        made = super().call_binop(context, operator, left, right)
        _after(made)
        return made


@pass_eval_context  # so Jinja2 never runs it while compiling
def concat_part(eval_ctx: EvalContext, value: Any) -> Any:
    """One operand of ``~``: text, a number or a date, as ``{{ }}`` would print it — never an
    empty value or a Python list turned into "None" or "[...]"."""
    return printable(eval_ctx, value)


def _formatting(pattern: str, values: list[Any]) -> None:
    if _WIDE.search(pattern):
        raise TooLarge
    if any(is_none(value) for value in values):
        raise UndefinedError(EMPTY)


def _look() -> None:
    clock = _CLOCK.get()
    if clock is not None:
        clock._look()


def _after(made: Any) -> None:
    _look()
    if isinstance(made, str | list | tuple) and len(made) > MAX_MAIL_CHARS:
        raise TooLarge


def _guarded(name: str, stock: Any) -> Any:
    # The wrapper keeps the filter's marks (pass_environment …): Jinja2 passes the same
    # arguments, the value after the one it marks.
    at = 1 if hasattr(stock, "jinja_pass_arg") else 0

    @wraps(stock)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _look()
        if len(args) > at:
            args = _before(name, args, at, kwargs)
        made = stock(*args, **kwargs)
        _after(made)
        return made

    return guarded


def _before(name: str, args: tuple[Any, ...], at: int, kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse, before any work, what would be too large or print an empty value."""
    value, rest = args[at], args[at + 1 :]
    if name == "join" and not (len(rest) > 1 or "attribute" in kwargs):
        items = list(value)  # read once: it may be a generator
        if any(is_none(item) for item in items):
            raise UndefinedError(EMPTY)
        return (*args[:at], items, *rest)
    if name == "format" and isinstance(value, str):
        _formatting(value, [*rest, *kwargs.values()])
    elif name == "replace" and isinstance(value, str) and len(rest) >= 2:
        old, new = rest[0], rest[1]
        if is_none(new):
            raise UndefinedError(EMPTY)
        old, new = str(old), str(new)
        times = value.count(old) if old else len(value) + 1
        if len(value) + times * (len(new) - len(old)) > MAX_MAIL_CHARS:
            raise TooLarge
    elif name in ("center", "indent"):
        width = rest[0] if rest else kwargs.get("width", 0)
        lines = str(value).count("\n") + 1 if name == "indent" else 1
        if isinstance(width, int) and width * lines > MAX_MAIL_CHARS:
            raise TooLarge
    elif name == "urlencode" and isinstance(value, dict):
        if any(is_none(item) for item in value.values()):
            raise UndefinedError(EMPTY)
    elif name == "tojson" and is_none(value):
        raise UndefinedError(EMPTY)
    return args
