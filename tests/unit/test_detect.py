"""Rhythm: silence judged against the customer's own habit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reengage.detect import population_gap, rhythm
from reengage.models import CustomerStats

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def stats(orders: int, gap_days: float, silent_days: float) -> CustomerStats:
    last = NOW - timedelta(days=silent_days)
    first = last - timedelta(days=gap_days * (orders - 1))
    return CustomerStats(
        customer_id=1,
        activity_count=orders,
        order_count=orders,
        first_activity_at=first,
        last_activity_at=last,
        first_order_at=first,
        last_order_at=last,
    )


def test_weekly_buyer_quiet_three_weeks_outranks_quarterly_buyer_quiet_six_weeks() -> None:
    weekly = rhythm(stats(20, 7, 21), NOW, 30)
    quarterly = rhythm(stats(8, 91, 42), NOW, 30)
    assert weekly is not None and quarterly is not None
    assert weekly.lapse_ratio > 2.5 > 1 > quarterly.lapse_ratio


def test_one_order_falls_back_to_the_population_gap_and_says_so() -> None:
    single = rhythm(stats(1, 0, 60), NOW, 30)
    assert single is not None
    assert not single.own_history
    assert single.lapse_ratio == 2.0
    assert "Too few orders" in single.why()


def test_population_gap_is_the_median_of_own_gaps() -> None:
    many = [stats(5, g, 1) for g in (7, 14, 30, 90, 120)] + [stats(1, 0, 1)]
    assert population_gap(many) == 30


def test_explanation_reads_like_a_person_wrote_it() -> None:
    r = rhythm(stats(10, 12, 41), NOW, 30)
    assert r is not None
    assert r.why() == "Usually orders every 12 days; silent for 41 days (3.4× that)."
