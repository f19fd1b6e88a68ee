"""A local time a DST change makes inexact is imported with a warning naming its row and
what it was read as, never moved silently: Europe/Berlin's spring-forward gap (2026-03-29
02:30 never happened) and its fall-back hour (2026-10-25 02:30 happened twice), through
``reengage import activities`` on a real database, and through the HTTP API's function."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from reengage.ingest import MAX_DST_WARNINGS, Kind, import_file, import_items
from reengage.store import Store
from reengage.store.tables import ACTIVITIES
from tests.integration.test_cli import cli

NOW = datetime(2026, 11, 1, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def stored(store: Store) -> dict[str, datetime]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(ACTIVITIES.c.external_id, ACTIVITIES.c.occurred_at))
        return {key: when.replace(tzinfo=UTC) for key, when in rows}


def test_the_gap_and_the_repeated_hour_are_imported_with_a_warning_naming_the_row(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "customers.csv").write_text("customer_id,email\nc1,ana@example.com\n")
    path = tmp_path / "orders.csv"
    path.write_text(
        "activity_id,customer_id,occurred_at,amount\n"
        "o1,c1,2026-03-29 02:30,50\n"  # never happened in Berlin
        "o2,c1,2026-10-25 02:30,60\n"  # happened twice
        "o3,c1,2026-10-25T02:30+01:00,70\n"  # the second, said exactly: no warning
        "o4,c1,2026-07-01 12:00,80\n"  # an ordinary summer afternoon: no warning
    )
    env = {
        "REENGAGE_DATABASE_URL": database_url,
        "REENGAGE_TIMEZONE": "Europe/Berlin",
        "REENGAGE_NOW": NOW.isoformat(),
    }
    assert cli("import", "customers", "customers.csv", cwd=tmp_path, env=env).returncode == 0
    result = cli("import", "activities", str(path), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "4 imported, 0 updated, 0 unchanged, 0 skipped" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        f"warning: {path}:2: occurred_at: '2026-03-29 02:30' does not exist in Europe/Berlin "
        "(the clocks went forward an hour that night): read as 03:30 CEST (2026-03-29 01:30 "
        "UTC), an hour later than written; give the time with its UTC offset if it was "
        "another moment",
        f"warning: {path}:3: occurred_at: '2026-10-25 02:30' happened twice in Europe/Berlin "
        "(the clocks went back an hour that night): read as the first, 02:30 CEST "
        "(2026-10-25 00:30 UTC); write 2026-10-25T02:30+01:00 if it was the second",
    ], result.stderr
    # Stored as the warnings say.
    assert stored(store) == {
        "o1": datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        "o2": datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        "o3": datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
        "o4": datetime(2026, 7, 1, 10, 0, tzinfo=UTC),
    }


def test_a_night_of_orders_in_the_gap_names_the_first_rows_and_counts_the_rest(
    store: Store, tmp_path: Path
) -> None:
    import_items(
        store,
        Kind.CUSTOMERS,
        [{"customer_id": "c1", "email": "a@example.com"}],
        now=NOW,
        zone=BERLIN,
    )
    items = [
        {"customer_id": "c1", "occurred_at": f"2026-03-29 02:{minute:02d}", "amount": 5.0}
        for minute in range(0, 60, 2)
    ]
    report = import_items(store, Kind.ACTIVITIES, items, now=NOW, zone=BERLIN)
    assert report.ok and report.counts.inserted == 30 and report.dst_rows == 30
    assert len(report.warnings) == MAX_DST_WARNINGS + 1
    assert report.warnings[0].startswith("items:0: occurred_at: '2026-03-29 02:00' does not")
    assert report.warnings[-1].startswith(
        f"… and {30 - MAX_DST_WARNINGS} more rows whose local time falls in a DST change in "
        "Europe/Berlin"
    )
    # A file read in UTC has no DST change: nothing to say.
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,occurred_at\nc1,2026-03-29 02:30\n")
    utc = import_file(store, Kind.ACTIVITIES, path, now=NOW, zone=ZoneInfo("UTC"))
    assert utc.ok and utc.warnings == []
