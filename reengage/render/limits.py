"""How much one template may make and how long it may run, for one customer.

A template may make at most :data:`MAX_MAIL_CHARS` (:func:`within_budget` consumes the
rendering piece by piece and stops at the limit) and may run for at most
:data:`MAX_RENDER_SECONDS` (:class:`time_limit`: every loop and every call counts its steps
against the clock, so a template looping over a loop stops with :class:`TooSlow` at the
loop it was in).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar
from time import monotonic
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

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


MAX_RENDER_SECONDS = 2.0  # how long one template may run for one customer
_STEPS_BETWEEN_LOOKS = 64  # loop items and calls between two looks at the clock


class TooSlow(Exception):
    """A template ran over :data:`MAX_RENDER_SECONDS` for one customer (raised while it runs:
    a loop over a loop, a list rebuilt on every step of a long loop)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class _Clock:
    """The time one rendering has left, counted in steps: looking at the clock on every
    item of every loop would cost more than the loop."""

    __slots__ = ("_deadline", "_left", "_seconds")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._deadline = monotonic() + seconds
        self._left = _STEPS_BETWEEN_LOOKS

    def step(self) -> None:
        self._left -= 1
        if self._left <= 0:
            self._look()

    def _look(self) -> None:
        self._left = _STEPS_BETWEEN_LOOKS
        if monotonic() > self._deadline:
            raise TooSlow(self._seconds)


class _Counted:
    """A loop's items, each one a step on the rendering's clock; its length is the items'
    (``loop.length`` need not read them all first)."""

    __slots__ = ("_clock", "_items")

    def __init__(self, items: Any, clock: _Clock) -> None:
        self._items, self._clock = items, clock

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        clock = self._clock
        for item in self._items:
            # _Clock.step, written out: this runs for every item of every loop.
            clock._left -= 1
            if clock._left <= 0:
                clock._look()
            yield item


# Kinds whose length is known and whose items cost nothing to make: a short one is counted
# at once, when its loop starts (a loop of 3 interests inside a loop of 2000 costs no
# more than before); a long one, item by item.
_SIZED = frozenset([list, tuple, dict, range, str])

# A filter name the template language cannot spell (a space): put on every loop by
# Sandbox._parse, and nowhere else.
_COUNTED = "reengage counted"


@pass_context  # so Jinja2 never runs it while compiling a loop over a literal list
def count_loop(_: Context, items: Any) -> Any:
    """A loop's items, counted on the rendering's clock (as they are, outside one)."""
    clock = _CLOCK.get()
    return items if clock is None else _counted(items, clock)


def _counted(items: Any, clock: _Clock) -> Any:
    if type(items) in _SIZED and len(items) <= _STEPS_BETWEEN_LOOKS:
        clock._left -= len(items)
        if clock._left <= 0:
            clock._look()
        return items
    return _Counted(items, clock)


# The clock of the rendering under way in this thread or task; None outside one.
_CLOCK: ContextVar[_Clock | None] = ContextVar("reengage_render_clock", default=None)


class time_limit:
    """Render inside this: a template still running after :data:`MAX_RENDER_SECONDS` stops
    with :class:`TooSlow` at the loop (or call) it was in. The whole rendering must happen
    inside (:func:`within_budget` consuming ``generate()``, or ``render()``).

    A class, not a @contextmanager: this wraps every rendering, and a generator-based
    one costs as much as a tenth of a short template's rendering.
    """

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _CLOCK.set(_Clock(MAX_RENDER_SECONDS))

    def __exit__(self, *_: object) -> None:
        _CLOCK.reset(self._token)
