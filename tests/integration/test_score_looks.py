"""Customers held back by a score rule are dated, not looked at every pass, and the pass
still enrolls exactly whom scoring everyone would (issue 19).

The twin stores of test_detection_looks (one store's passes look only at who is due, the
other's at everyone), with campaigns whose audiences lean on the score (a minimum score,
filters on the score, the value at risk and the priority, floors and ceilings), over a
clock that moves days at a time for months, under the rhythm prior, a fitted model whose
score only grows with silence and one whose weights pull both ways.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from reengage.enroll import detect_and_enroll
from reengage.store import Store
from reengage.store.activities import NewActivity
from tests.integration.test_detection_looks import (
    AUDIENCES,
    START,
    Twin,
    campaign,
    enrolled,
    orders_of,
    world,
)

SCORE_AUDIENCES = [
    "lapsed: {factor: 1.0, min_days_silent: 3, min_score: 0.8}",
    "lapsed: {factor: 0.5, max_days_silent: 150, min_score: 0.65}\n  where: ['orders >= 5']",
    "where: ['lapse_score >= 0.7', 'lapse_score < 0.9', 'orders >= 2']",
    "lapsed: {factor: 1.0}\n  where: ['value_at_risk >= 400']",
    "where: ['priority > 300', 'value_at_risk <= 2000']",
]
RISING = (-3.0, 0.6, -0.3, 0.2, 0.4, 0.1, 0.6)  # silence, age and the prior all push up


@pytest.mark.parametrize("seed", [4, 5])
def test_score_held_customers_are_dated_and_enrolled_as_scoring_everyone_would(
    tmp_path: Any, seed: int
) -> None:
    twin_months(f"sqlite:///{tmp_path / 'looking.db'}", tmp_path, seed)


def test_the_same_on_the_database_url(database_url: str, tmp_path: Any) -> None:
    twin_months(database_url, tmp_path, seed=6)


def twin_months(database_url: str, tmp_path: Any, seed: int) -> None:
    rng = random.Random(seed)
    other = f"sqlite:///{tmp_path / 'everyone.db'}"
    looking, everyone = Store.open(database_url, upgrade=True), Store.open(other, upgrade=True)
    twin = Twin(looking, everyone)
    campaigns = [campaign(n, a, rng) for n, a in enumerate(AUDIENCES[:1] + SCORE_AUDIENCES)]
    rows, count = world(rng, 160)
    twin.customers(rows, START)
    ids = looking.customers.customer_ids(r["external_id"] for r in rows)
    twin.orders(
        [o for r in rows for o in orders_of(rng, ids[r["external_id"]], r["external_id"])], START
    )
    now = START
    steady = []  # customers looked at by a pass ten minutes after one, nothing changed
    for step in range(70):
        now += timedelta(days=rng.choice([1, 1, 2, 3, 5]), hours=rng.choice([0, 3, 11]))
        change = rng.random()
        key = f"k{rng.randrange(count)}"
        if change < 0.2:
            twin.orders([NewActivity(f"{key}-n{step}", ids[key], "order", now, 90.0, 25.0)], now)
        elif change < 0.3:
            twin.end_one(rng, now)
        elif change < 0.35:
            twin.pause(key, now + timedelta(days=rng.choice([2, 15])))
        if step == 25:
            twin.model(RISING, now)
        if step == 50:  # weights that pull both ways: the score rises and falls
            twin.model(tuple(rng.uniform(-1.5, 1.5) for _ in range(7)), now)
        before = len(enrolled(everyone))
        report = detect_and_enroll(looking, campaigns, now)
        detect_and_enroll(everyone, campaigns, now, whole=True)
        assert enrolled(looking) == enrolled(everyone), f"after pass {step} at {now}"
        assert sum(report.entered.values()) + sum(report.held_out.values()) == (
            len(enrolled(everyone)) - before
        )
        # Under each model, passes ten minutes apart with nothing changing, for longer than
        # the hour in which an ended enrollment (a holdout's ends at once) is looked for.
        if step in (24, 49, 69):
            for _ in range(9):
                now += timedelta(minutes=10)
                report = detect_and_enroll(looking, campaigns, now)
                detect_and_enroll(everyone, campaigns, now, whole=True)
                assert enrolled(looking) == enrolled(everyone), f"quiet pass at {now}"
            steady.append(report.looked_at)
    assert sum(e[2] in ("active", "holdout") for e in enrolled(looking)) > 20
    # Those whose date came within ten minutes, not everyone a score rule holds back.
    assert max(steady) <= 2, steady
    looking.close()
    everyone.close()
