"""The command never writes a control character from data to the terminal.

Imports refuse such text now; this database holds some from before (written past the
importer), as an old database could. A name with ``ESC[2J`` (clear the screen) and
``ESC]0;…BEL`` (retitle the window) is shown as visible escapes, never obeyed.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.table import Table
from rich.text import Text

from reengage.cli.terminal import SafeConsole
from reengage.store import Store
from tests.integration import digest_world as w
from tests.integration.test_cli import cli

pytestmark = pytest.mark.clock
NOW = datetime(2026, 11, 22, 23, 40, tzinfo=UTC)
EVIL = "\x1b[2J\x1b]0;pwned\x07Evil"
SHOWN = "\\x1b[2J\\x1b]0;pwned\\x07Evil"


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    store = Store.open(database_url, upgrade=True)
    try:
        w.fill(store, NOW)
        store.customers.upsert_customers(
            [{"external_id": "bakery", "first_name": EVIL, "company": f"{EVIL} GmbH\x9b31m"}],
            NOW,
        )
    finally:
        store.close()
    return {
        "REENGAGE_NOW": NOW.isoformat(),
        "REENGAGE_DATABASE_URL": database_url,
        "REENGAGE_CAMPAIGNS_DIR": str(w.ROOT / "campaigns"),
        "REENGAGE_TEMPLATES_DIR": str(w.ROOT / "templates"),
        "REENGAGE_SECRET_KEY": w.SECRET,
    }


def obeyable(text: str) -> set[str]:
    """The control characters a terminal would act on (tab and line feed aside)."""
    return {c for c in text if (ord(c) < 32 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F}


def test_customers_show_and_calls_list_show_escape_sequences_never_send_them(
    tmp_path: Path, env: dict[str, str]
) -> None:
    shown = cli("customers", "show", "bakery", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert not obeyable(shown.stdout + shown.stderr)
    assert SHOWN in shown.stdout
    listed = cli("calls", "list", "--rep", "R1", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert not obeyable(listed.stdout + listed.stderr)
    assert "\\x1b[2J" in listed.stdout and "GmbH\\x9b31m" in listed.stdout


def test_a_terminal_gets_rich_colours_but_no_control_character_from_a_cell() -> None:
    file = io.StringIO()
    console = SafeConsole(file=file, force_terminal=True, color_system="standard", width=80)
    table = Table(title=f"title {EVIL}")
    table.add_column("name")
    table.add_column("n", justify="right")
    table.add_row(EVIL, "1")
    styled = Text(EVIL)
    styled.stylize("bold", 0, 4)
    table.add_row(styled, "2")
    console.print(table, markup=False)
    console.print(f"[bold]note[/bold]: {EVIL}")
    console.print(f"plain: {EVIL}\x9b31m", markup=False, highlight=False)
    written = file.getvalue()
    # rich's own styles are the only escapes: each ESC opens an SGR sequence (ESC [ … m).
    assert written.count("\x1b") == written.count("\x1b[") > 0
    assert "\x1b[2J" not in written and "\x1b]" not in written and "\x07" not in written
    assert obeyable(written) == {"\x1b"}
    plain = SafeConsole(file=io.StringIO(), width=80)
    plain.print(table, markup=False)
    plain.print(f"plain: {EVIL}\x9b31m", markup=False, highlight=False)
    text = plain.file.getvalue()  # type: ignore[attr-defined]
    assert not obeyable(text)
    assert f"│ {SHOWN} │ 1 │" in text  # the cell as wide as what it shows: borders align
    assert f"plain: {SHOWN}\\x9b31m" in text
