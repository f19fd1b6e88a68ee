"""A negative amount (a refund) is refused at import, by CSV and the API alike.

Taken as an order it would end a lapsed customer's sequence as "came back" and show as
negative revenue; reengage counts what customers bought, so the row is named and skipped.
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


def test_a_refund_is_refused_and_counts_neither_as_an_order_nor_as_value(
    store: Store, tmp_path: Path
) -> None:
    import_items(
        store,
        Kind.CUSTOMERS,
        [{"customer_id": "c1", "email": "a@example.com"}],
        now=NOW,
        zone=UTC_ZONE,
    )
    path = tmp_path / "orders.csv"
    path.write_text(
        "activity_id,customer_id,occurred_at,amount,margin\n"
        "o1,c1,2026-09-01,120,30\n"
        "o2,c1,2026-10-01,-500,\n"
        "o3,c1,2026-10-02,999999999999.99,\n"  # within the bound: kept
        "o4,c1,2026-10-03,1000000000000.000001,\n"  # beyond it, though a float reads 1e12
        "o5,c1,2026-10-04,80,-5\n",  # a sale at a loss: kept
        encoding="utf-8",
    )
    report = import_file(store, Kind.ACTIVITIES, path, now=NOW, zone=UTC_ZONE)
    assert [(p.line, p.column, p.problem.split(":")[0]) for p in report.rejected] == [
        (3, "amount", "'-500' is negative"),
        (5, "amount", "'1000000000000.000001' is out of range"),
    ]
    assert report.counts.inserted == 3
    found = store.customers.get_customer("c1")
    assert found is not None and found[1] is not None
    stats = found[1]
    assert stats.total_value == pytest.approx(120 + 999999999999.99 + 80)
    assert stats.last_order_at == datetime(2026, 10, 4, tzinfo=UTC)
    api = import_items(
        store,
        Kind.ACTIVITIES,
        [{"activity_id": "o6", "customer_id": "c1", "occurred_at": "2026-10-05", "amount": -500}],
        now=NOW,
        zone=UTC_ZONE,
    )
    assert [(p.column, p.problem[:18]) for p in api.rejected] == [("amount", "'-500' is negative")]
