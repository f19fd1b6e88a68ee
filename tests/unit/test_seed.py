"""The synthetic data: deterministic, varied, and shaped like real purchase histories."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, datetime

from reengage.ingest import parse_activity, parse_customer
from reengage.seed import customer

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def people(n: int, seed: int = 1) -> list[tuple[dict[str, str], list[dict[str, str]]]]:
    return [customer(i, seed=seed, now=NOW, reps=5) for i in range(1, n + 1)]


def test_same_seed_same_data_and_other_seed_other_data() -> None:
    assert people(50) == people(50)
    assert people(50) != people(50, seed=2)


def test_every_generated_row_passes_the_import_validation() -> None:
    from zoneinfo import ZoneInfo

    for row, activities in people(200):
        parse_customer(row)
        for activity in activities:
            parse_activity(activity, ZoneInfo("UTC"))


def test_rhythms_are_varied_and_most_customers_have_few_orders() -> None:
    sample = people(1000)
    rhythms = Counter(row["tags"].split(";")[0] for row, _ in sample)
    assert set(rhythms) == {"weekly", "fortnightly", "monthly", "quarterly", "occasional"}
    orders = [sum(a["kind"] == "order" for a in acts) for _, acts in sample]
    # Like real shops: a large share of one- and two-time buyers, a long tail of regulars.
    assert sum(o <= 2 for o in orders) > len(orders) * 0.35
    assert statistics.median(orders) < statistics.mean(orders)
    assert max(orders) >= 20


def test_b2b_accounts_have_a_decision_maker_and_a_contract_date() -> None:
    b2b = [row for row, _ in people(300) if "b2b" in row["tags"]]
    assert b2b
    assert all(row["decision_maker"] and row["company"] for row in b2b)
    assert all(row["important_dates"].startswith("contract anniversary=") for row in b2b)


def test_no_activity_in_the_future() -> None:
    for _, activities in people(300):
        assert all(a["occurred_at"] <= NOW.isoformat() for a in activities)
