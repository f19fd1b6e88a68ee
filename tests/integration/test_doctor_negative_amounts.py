"""`reengage doctor` finds refunds stored before import refused them, and the fix it names works.

An activity with a negative amount counts as an order, as revenue and as a comeback; import
refuses one now, but a database filled earlier may hold some. Doctor warns (not a failure),
with how many, whose, and how to correct them: importing each again under its activity id
with the amount the customer paid, after which the warning is gone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from reengage.ingest import Kind, import_items
from reengage.store import Store
from reengage.store.activities import NewActivity
from tests.integration.test_cli import cli

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def test_doctor_warns_of_negative_amounts_and_the_fix_it_names_clears_them(
    tmp_path: Path, store: Store, database_url: str
) -> None:
    people = [{"customer_id": f"c{n}", "email": f"c{n}@example.com"} for n in range(1, 8)]
    assert import_items(store, Kind.CUSTOMERS, people, now=NOW, zone=ZoneInfo("UTC")).ok
    ids = store.customers.customer_ids([p["customer_id"] for p in people])
    # As an import before the refusal stored them: refunds of six customers, one order.
    refunds = [
        NewActivity(f"r{n}", ids[f"c{n}"], "order", datetime(2026, 10, n, tzinfo=UTC), -50.0, None)
        for n in range(1, 7)
    ]
    kept = NewActivity("o7", ids["c7"], "order", datetime(2026, 10, 9, tzinfo=UTC), 120.0, None)
    store.customers.add_activities([*refunds, kept], NOW)
    env = {"REENGAGE_DATABASE_URL": database_url, "REENGAGE_NOW": NOW.isoformat()}

    doctor = cli("doctor", cwd=tmp_path, env=env)
    warned = [line for line in doctor.stdout.splitlines() if line.startswith("WARN")]
    assert len(warned) == 1, doctor.stdout
    line = warned[0]
    assert line.startswith(
        "WARN negative amounts: 6 activities have an amount below zero (refunds imported "
        "before import refused them), of 6 customer(s): c1, c2, c3, c4, c5, …."
    )
    assert "counts as an order, as revenue and as a comeback" in line
    assert "activity ids r1, r2, r3, r4, r5, …" in line
    assert "reengage import activities FILE" in line and "WHERE a.amount < 0" in line
    assert "c7" not in line

    # The fix as doctor words it: each activity again under its id, with what was paid.
    orders = tmp_path / "corrected.csv"
    orders.write_text(
        "activity_id,customer_id,occurred_at,amount\n"
        + "".join(f"r{n},c{n},2026-10-{n:02d},50\n" for n in range(1, 7)),
        encoding="utf-8",
    )
    assert cli("import", "activities", str(orders), cwd=tmp_path, env=env).returncode == 0
    again = cli("doctor", cwd=tmp_path, env=env).stdout
    assert "negative amounts" not in again and "WARN" not in again, again
    (_, stats) = store.customers.get_customer("c1") or (None, None)
    assert stats is not None and stats.total_value == 50.0
