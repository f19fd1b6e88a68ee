"""What the command writes to a terminal: never a control character that came from data.

A customer's name holding ``ESC[2J`` (clear the screen) or ``ESC]0;…BEL`` (retitle the
window) would act on the terminal of whoever lists it. Imports refuse such text now, but a
database may hold some from before, and call notes or replies arrive by other roads. rich
strips only a few control codes (BEL, backspace, CR and the like) and lets ESC through, with
or without markup, so every console the CLI prints on is a :class:`SafeConsole`:

- every string it renders (a printed line, a table's cell or title) shows each control
  character as a visible escape (``\\x1b``), so a person sees what the data holds;
- a safety net drops any control character still in the rendered text (a ``Text`` built
  elsewhere): rich measures them as zero cells wide, so the table around stays aligned.

rich's own colours and cursor moves, which it marks as control segments, pass untouched.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import (
    Console,
    ConsoleOptions,
    ConsoleRenderable,
    RenderableType,
    RenderHook,
    RenderResult,
)
from rich.segment import Segment
from rich.text import Text

from reengage.controls import CONTROL, clean


class SafeConsole(Console):
    """A rich ``Console`` that never writes a control character from what it prints."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.push_render_hook(_Dropping())

    def render_str(self, text: str, **options: Any) -> Text:
        """rich's ``render_str`` of ``text`` with its control characters made visible."""
        return super().render_str(clean(text), **options)

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        """rich's ``render``; a ``Text`` (a table's cell, a label) shows its control
        characters as visible escapes, its styles kept."""
        if isinstance(renderable, Text) and not renderable.plain.isprintable():
            renderable = clean_rich(renderable)
        return super().render(renderable, options)


def clean_rich(text: Text) -> Text:
    """A copy of ``text`` with each control character as a visible ``\\xNN``, its styles kept."""
    found = [m.start() for m in CONTROL.finditer(text.plain)]
    if not found:
        return text
    cuts = sorted({*found, *(i + 1 for i in found)})
    pieces = text.divide(cuts)
    for i, piece in enumerate(pieces):
        if len(piece.plain) == 1 and CONTROL.match(piece.plain):
            shown = Text(clean(piece.plain), style=piece.style)
            for span in piece.spans:  # the character's styles, over its escape
                shown.stylize(span.style)
            pieces[i] = shown
    return Text("", style=text.style, justify=text.justify, overflow=text.overflow).join(pieces)


class _Dropped:
    """A renderable as rich draws it, without the control characters in its text."""

    def __init__(self, inner: RenderableType) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for segment in console.render(self.inner, options):
            if segment.control or segment.text.isprintable():
                yield segment
            else:
                yield Segment(CONTROL.sub("", segment.text), segment.style)


class _Dropping(RenderHook):
    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        return [_Dropped(r) for r in renderables]
