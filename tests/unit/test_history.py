"""Folding a history: order-independent, robust to one odd gap, and alert to shrinking."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from reengage.history import RING, Event, Summary, summarize

START = datetime(2024, 1, 1, tzinfo=UTC)

events = st.lists(
    st.builds(
        Event,
        kind=st.sampled_from(["order", "order", "visit"]),
        occurred_at=st.integers(0, 700 * 24).map(lambda h: START + timedelta(hours=h)),
        amount=st.one_of(st.none(), st.floats(0, 1000).map(lambda x: round(x, 2))),
        margin=st.one_of(st.none(), st.floats(0, 300).map(lambda x: round(x, 2))),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(history=events, seed=st.integers(0, 10_000), cuts=st.integers(1, 6))
def test_any_order_and_any_batching_give_the_same_summary(
    history: list[Event], seed: int, cuts: int
) -> None:
    expected = summarize(sorted(history, key=lambda e: e.occurred_at))
    shuffled = history[:]
    random.Random(seed).shuffle(shuffled)
    piecewise = Summary()
    size = max(1, len(shuffled) // cuts)
    for start in range(0, len(shuffled), size):
        piecewise.fold(shuffled[start : start + size])
    assert piecewise.activity_count == expected.activity_count
    assert piecewise.order_count == expected.order_count
    assert piecewise.last_order_at == expected.last_order_at
    assert piecewise.first_activity_at == expected.first_activity_at
    assert abs(piecewise.total_value - expected.total_value) < 1e-6
    assert piecewise.recent_orders == expected.recent_orders
    assert piecewise.typical_gap_days() == expected.typical_gap_days()
    assert piecewise.declines() == expected.declines()


def orders(days: list[float], amounts: list[float] | None = None) -> list[Event]:
    amounts = amounts or [100.0] * len(days)
    return [
        Event("order", START + timedelta(days=d), a, a * 0.3)
        for d, a in zip(days, amounts, strict=True)
    ]


def test_one_odd_gap_does_not_swing_the_typical_gap() -> None:
    steady = [7.0 * i for i in range(10)]
    with_holiday = [*steady[:5], *[d + 42 for d in steady[5:]]]  # one 49-day gap
    assert summarize(orders(steady)).typical_gap_days() == 7.0
    assert summarize(orders(with_holiday)).typical_gap_days() == 7.0


def test_orders_on_the_same_day_are_one_buying_occasion() -> None:
    days = [d for i in range(8) for d in (14.0 * i, 14.0 * i + 0.1)]
    assert summarize(orders(days)).typical_gap_days() == 14.0


def test_ring_keeps_only_the_latest_orders() -> None:
    summary = summarize(orders([float(i) for i in range(40)]))
    assert len(summary.recent_orders) == RING
    assert summary.order_count == 40
    assert summary.recent_orders[0].at == (START + timedelta(days=40 - RING)).timestamp()


def test_shrinking_account_is_flagged_while_still_ordering() -> None:
    days = [10.0 * i for i in range(16)]
    amounts = [200.0] * 10 + [200.0, 160.0, 120.0, 90.0, 80.0, 70.0]
    declines = summarize(orders(days, amounts)).declines()
    assert declines.window_days == 30.0
    assert declines.count_ratio == 1.0
    assert declines.aov_ratio is not None
    assert declines.aov_ratio < 0.6
    assert declines.margin_ratio is not None
    assert declines.margin_ratio < 0.6


def test_slowing_customer_shows_fewer_orders_in_the_recent_window() -> None:
    days = [7.0 * i for i in range(12)] + [84 + 14.0 * i for i in range(1, 4)]
    declines = summarize(orders(days)).declines()
    assert declines.count_ratio is not None
    assert 0.4 < declines.count_ratio < 0.5  # every 16 days lately against every 7 before
    assert declines.aov_ratio == 1.0


def test_steady_customer_has_ratios_near_one_and_newcomer_has_none() -> None:
    steady = summarize(orders([10.0 * i for i in range(16)])).declines()
    assert steady.count_ratio == 1.0
    assert steady.aov_ratio == 1.0
    assert summarize(orders([0.0, 10.0, 20.0, 30.0, 40.0])).declines().count_ratio is None
