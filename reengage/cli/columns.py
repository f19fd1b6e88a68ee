"""Tables that fit the terminal without cutting a number.

rich shrinks a table that is too wide for the console by cutting its cells ("1…" for 125).
Here a table's columns are measured first: each needs its longest cell and its header's
longest word. Columns that do not fit beside the first (label) column go to another table
below, which repeats the labels, so a narrow terminal gets more, shorter tables instead of
cut numbers. Labels and text columns wrap; numbers never do, except a figure of several
words ("105/300 (35.0%)", "2.9 to 15.4") too wide to sit beside the labels even alone: it
wraps between its words, never inside one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

# Each column takes its content plus one space either side and one border; a table adds
# one more border at its right edge.
_PADDING_AND_BORDER = 3
# A label or text column is never squeezed below this, whatever its longest word, unless
# the terminal leaves it less room even alone beside the labels (see Column.wrap).
_NARROWEST_TEXT = 12


@dataclass(frozen=True)
class Column:
    """A column: its header and one cell per row (numbers as already formatted text).

    ``text`` columns (names, verdicts) wrap to the room left; the others are as wide as their
    widest cell, so every cell stays on one line, whole.
    """

    header: str
    cells: list[str | Text]
    right: bool = True
    text: bool = False
    # Set when too wide for the room even alone: a figure wraps between its words, a text
    # column goes below its usual narrowest, down to its longest word.
    wrap: bool = False

    @property
    def needed(self) -> int:
        """The narrowest this column can be without cutting a cell or a header's word (or,
        when it ``wrap``s, a cell's word)."""
        # A header's word longer than that (a step's key) folds over lines.
        words = [min(cell_len(w), _NARROWEST_TEXT) for w in self.header.split()] or [0]
        if self.wrap:  # a text column's long word (a URL) folds, as its header's does
            cap = _NARROWEST_TEXT if self.text else None
            longest = (_capped(cell_len(w), cap) for c in self.cells for w in _plain(c).split())
            return max(max(words), *longest, 0)
        if self.text:
            return max(_NARROWEST_TEXT, *words)
        return max(max(words), *(_cell_len(c) for c in self.cells), 0)

    @property
    def natural(self) -> int:
        """How wide the column is with every cell and its header on one line."""
        return max(cell_len(self.header), *(_cell_len(c) for c in self.cells), 0)


@dataclass(frozen=True)
class Layout:
    """What goes into the tables: the label column each repeats, the others, and the rows
    after which a line is drawn."""

    label: Column
    columns: list[Column]
    sections: set[int] = field(default_factory=set)  # a line after these rows


def natural_width(layout: Layout) -> int:
    """How wide one table holding every column on one line each would be."""
    return 1 + sum(c.natural + _PADDING_AND_BORDER for c in [layout.label, *layout.columns])


def width_of(table: Table) -> int:
    """How wide a table from :func:`fitted` prints (its columns have fixed widths)."""
    return 1 + sum((c.width or 0) + _PADDING_AND_BORDER for c in table.columns)


def fits(layout: Layout, width: int) -> bool:
    """Whether all of ``layout``'s columns fit one table ``width`` wide (labels may wrap)."""
    return len(_groups(layout, width)[1]) == 1


def fitted(layout: Layout, width: int) -> list[Table]:
    """Tables no wider than ``width`` holding all of ``layout``'s columns, in order.

    Each table repeats the label column. If even one column beside the labels does not fit,
    that table is as wide as it must be: a terminal wraps a long line, it never cuts it.
    """
    label_width, groups = _groups(layout, width)
    room = width - 1 - (label_width + _PADDING_AND_BORDER)
    return [_table(layout, label_width, group, room) for group in groups]


def show_tables(
    console: Console, title: str, layout: Layout, width: int, style: str = "italic"
) -> None:
    """``title`` then ``layout``'s columns in as many tables as ``width`` needs."""
    say(console, title, width, style)
    for table in fitted(layout, width):
        needed = width_of(table)
        if needed <= console.width:
            console.print(table)
            continue
        # A table wider than the console (--wide, or one column that cannot fit) is
        # printed whole: a terminal wraps a long line, cropping would cut numbers. rich
        # caps a print's width at the console's, so the console widens for it.
        before = console.width
        console.width = needed
        try:
            console.print(table, crop=False)
        finally:
            console.width = before


def say(console: Console, text: str, width: int | None = None, style: str = "") -> None:
    """A line of text wrapped between words at ``width`` (the console's, when not given):
    the console's own soft wrap would let the terminal break it anywhere, in the middle of
    a number."""
    console.print(
        Text(text, style=style),
        width=width or console.width,
        soft_wrap=False,
        overflow="fold",
        crop=False,
        highlight=False,
    )


def _groups(layout: Layout, width: int) -> tuple[int, list[list[Column]]]:
    """The label column's width, and the other columns in tables that fit beside it."""
    label_width = min(layout.label.natural, max(_NARROWEST_TEXT, (width * 2) // 5))
    room = width - 1 - (label_width + _PADDING_AND_BORDER)
    groups: list[list[Column]] = [[]]
    used = 0
    for given in layout.columns:
        too_wide = given.needed + _PADDING_AND_BORDER > room
        column = replace(given, wrap=True) if too_wide else given  # even alone: wrap it
        needed = column.needed + _PADDING_AND_BORDER
        if groups[-1] and used + needed > room:
            groups.append([])
            used = 0
        groups[-1].append(column)
        used += needed
    return label_width, groups


def _table(layout: Layout, label_width: int, group: list[Column], room: int) -> Table:
    widths = _share(group, room)
    table = Table()
    table.add_column(layout.label.header, width=label_width, overflow="fold", justify="left")
    for column, column_width in zip(group, widths, strict=True):
        # Every cell of a number column fits its width (one that wraps, between words).
        table.add_column(
            column.header,
            width=column_width,
            justify="right" if column.right else "left",
            overflow="fold",
        )
    for row, label in enumerate(layout.label.cells):
        table.add_row(
            label,
            *(column.cells[row] for column in group),
            end_section=row in layout.sections,
        )
    return table


def _share(group: list[Column], room: int) -> list[int]:
    """Each column's width: what it needs, then the spare room towards its natural width,
    and any left to the text columns (a verdict reads better on fewer lines)."""
    widths = [c.needed for c in group]
    spare = room - sum(w + _PADDING_AND_BORDER for w in widths)
    for i, column in enumerate(group):
        grow = min(max(spare, 0), column.natural - widths[i])
        if grow > 0 and not column.text:
            widths[i] += grow
            spare -= grow
    texts = [i for i, c in enumerate(group) if c.text]
    for n, i in enumerate(texts):
        grow = min(max(spare, 0) // (len(texts) - n), max(group[i].natural - widths[i], 0))
        widths[i] += grow
        spare -= grow
    return widths


def _capped(length: int, cap: int | None) -> int:
    return length if cap is None else min(length, cap)


def _plain(cell: str | Text) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _cell_len(cell: str | Text) -> int:
    return cell.cell_len if isinstance(cell, Text) else cell_len(cell)
