"""Value at risk per stop reason: each customer once, however often they were called.

Real store and the real outcome recording (``record_outcome``), read back the way
``reengage report causes`` and ``reengage stats`` (terminal, JSON and CSV) read them.
"""

from __future__ import annotations

import csv
import io

import pytest

from reengage.digest import CallReport, causes
from reengage.models import CauseScope, NextStep, Reached, StopReason, WorthIt
from reengage.stats import campaign_results, to_csv, to_json
from reengage.store import Store
from tests.integration import digest_world as w
from tests.integration.test_digest import log_call


@pytest.fixture
def world(store: Store) -> Store:
    w.fill(store)
    return store


def said(reason: StopReason) -> CallReport:
    return CallReport(
        Reached.DECISION_MAKER,
        WorthIt.LATER,
        NextStep.NOTHING,
        reason=reason,
        scope=CauseScope.SYSTEMIC,
    )


def test_a_customer_who_gave_a_reason_twice_is_at_risk_once(world: Store) -> None:
    # The bakery says "price" on two calls a month apart; the wholesale account says
    # "price" once and "delivery" once.
    log_call(world, "bakery", said(StopReason.PRICE), days_ago=30)
    log_call(world, "bakery", said(StopReason.PRICE))
    log_call(world, "wholesale", said(StopReason.PRICE), days_ago=20)
    log_call(world, "wholesale", said(StopReason.DELIVERY))
    ids = world.customers.customer_ids(["bakery", "wholesale"])
    latest = {o.customer_id: o.value_at_risk for o in world.calls.outcomes_since(None)}
    ana, buyer = latest[ids["bakery"]], latest[ids["wholesale"]]
    assert ana and buyer  # both have a year's value

    report = causes(world, None)
    lost = {row.reason: row.value_lost for row in report.rows}
    assert lost["price"] == pytest.approx(ana + buyer)  # not 2 × the bakery's
    assert lost["delivery"] == pytest.approx(buyer)
    assert report.value_lost == pytest.approx(ana + buyer)  # the wholesale account once

    results = campaign_results(world, w.NOW)
    price = next(r for r in results.calls.reasons if r.reason == "price")
    assert price.calls == 3  # every call still counts as a call
    assert price.value_at_risk == pytest.approx(ana + buyer)
    assert results.calls.value_at_risk == pytest.approx(ana + buyer)
    assert to_json(results)["calls"]["value_at_risk"] == round(ana + buyer, 2)
    rows = list(csv.DictReader(io.StringIO(to_csv(results))))
    at_risk = {r["reason"]: float(r["value"]) for r in rows if r["measure"] == "value_at_risk"}
    assert at_risk == {
        "price": pytest.approx(ana + buyer, abs=0.01),
        "delivery": pytest.approx(buyer, abs=0.01),
    }
    (everyone,) = [float(r["value"]) for r in rows if r["measure"] == "value_at_risk_all"]
    assert everyone == pytest.approx(ana + buyer, abs=0.01)
