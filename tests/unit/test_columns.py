"""Tables split to the terminal's width: whatever the width and the numbers, none is cut."""

from __future__ import annotations

import io
import re

import hypothesis
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from reengage.cli.columns import Column, Layout, fits, fitted, width_of

HEADERS = ["sent", "delivered", "opened*", "complaints", "value at risk / year", "reactivated"]


def printed(layout: Layout, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    for table in fitted(layout, width):
        console.print(table)
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


@hypothesis.settings(
    deadline=None,  # rendering tables is slow on a loaded machine, not wrong
    derandomize=True,  # the same cases on every run: a failure reproduces
    database=None,
)
@hypothesis.given(
    width=st.integers(min_value=40, max_value=220),
    rows=st.lists(
        st.lists(st.integers(min_value=0, max_value=10**9), min_size=6, max_size=6),
        min_size=1,
        max_size=5,
    ),
    name=st.text(alphabet="abcdefgh-", min_size=1, max_size=70),
)
def test_every_number_is_whole_and_every_line_fits(
    width: int, rows: list[list[int]], name: str
) -> None:
    cells = [[f"{n:,}" for n in row] for row in rows]
    layout = Layout(
        Column("campaign", [Text(f"{name}-{i}") for i in range(len(rows))], right=False, text=True),
        [Column(h, [row[i] for row in cells]) for i, h in enumerate(HEADERS)],
    )
    text = printed(layout, width)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    for row in cells:
        for number in row:
            assert re.search(rf"(?<![\d,]){re.escape(number)}(?![\d,])", text), number
    for header in HEADERS:
        for word in header.split():
            assert word in text
    assert all(width_of(t) <= width for t in fitted(layout, width))


def test_a_table_that_fits_stays_one_table_and_one_that_does_not_is_split() -> None:
    layout = Layout(
        Column("step", ["hello", "tip"], right=False, text=True),
        [Column(h, ["12,345", "125"]) for h in HEADERS],
    )
    assert fits(layout, 120) and len(fitted(layout, 120)) == 1
    assert not fits(layout, 60) and len(fitted(layout, 60)) == 2
    assert "12,345" in printed(layout, 60)
