"""Control characters in customer data are refused at import, by CSV and the API alike.

An escape sequence in a name (``ESC[2J`` clears the screen, ``ESC]0;…BEL`` retitles the
window) would reach every terminal that shows it; a tab or line break is only whitespace.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reengage.ingest import Kind, import_file, import_items
from reengage.store import Store

NOW = datetime(2026, 11, 1, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")
EVIL = "\x1b[2J\x1b]0;pwned\x07Evil"


def test_a_csv_row_with_an_escape_sequence_is_refused_with_its_line_and_column(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(
        "customer_id,email,first_name,company,notes\n"
        f"ESC1,evil@example.com,{EVIL},Acme,\n"
        "C1,ana@example.com,Ana\tMaria,Zoë 👩\u200d👩\u200d👧 GmbH,\n"  # a tab: a space
        "C2,bo@example.com,Bo,Csi\x9b31m Ltd,\n"  # C1: CSI, the one-byte ESC [
        'C3,cy@example.com,Cy,,"first line\nsecond\x7f"\n',
        encoding="utf-8",
    )
    report = import_file(store, Kind.CUSTOMERS, path, now=NOW, zone=UTC_ZONE)
    problems = [str(p) for p in report.rejected]
    assert len(problems) == 3
    assert problems[0].startswith(f"{path}:2: first_name: contains a control character ('\\x1b'")
    assert "remove it" in problems[0]
    assert problems[1].startswith(f"{path}:4: company: contains a control character ('\\x9b'")
    assert problems[2].startswith(f"{path}:5: notes: contains a control character ('\\x7f'")
    assert report.counts.inserted == 1
    found = store.customers.get_customer("C1")
    assert found is not None
    assert (found[0].first_name, found[0].company) == ("Ana Maria", "Zoë 👩\u200d👩\u200d👧 GmbH")
    assert not store.customers.customer_ids(["ESC1", "C2", "C3"])


def test_the_api_refuses_the_same_item_the_same_way(store: Store) -> None:
    report = import_items(
        store,
        Kind.CUSTOMERS,
        [
            {"customer_id": "ESC1", "email": "evil@example.com", "first_name": EVIL},
            {"customer_id": "C1", "email": "ana@example.com", "interests": ["bread\x1b[5m"]},
            {"customer_id": "C2", "email": "bo@example.com", "first_name": "Bo"},
        ],
        now=NOW,
        zone=UTC_ZONE,
    )
    assert [(p.line, p.column) for p in report.rejected] == [(0, "first_name"), (1, "interests")]
    assert all("contains a control character" in p.problem for p in report.rejected)
    assert report.counts.inserted == 1


@pytest.mark.parametrize("column", ["customer_id", "activity_id", "kind"])
def test_an_activity_with_a_control_character_is_refused(
    store: Store, tmp_path: Path, column: str
) -> None:
    import_items(
        store,
        Kind.CUSTOMERS,
        [{"customer_id": "C1", "email": "a@example.com"}],
        now=NOW,
        zone=UTC_ZONE,
    )
    row = {"customer_id": "C1", "occurred_at": "2026-10-01", "activity_id": "A1", "kind": "order"}
    row[column] = row[column] + "\x1b[2J"
    report = import_items(store, Kind.ACTIVITIES, [row], now=NOW, zone=UTC_ZONE)
    assert [(p.column, p.problem[:28]) for p in report.rejected] == [
        (column, "contains a control character")
    ]
