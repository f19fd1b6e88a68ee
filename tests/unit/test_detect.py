"""Detection on synthetic histories where the truth is known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reengage.detect import Population, Profile, assess, expected_gap, fit_population
from reengage.history import Event, summarize

NOW = datetime(2026, 11, 1, tzinfo=UTC)
POP = Population(typical_gap_days=30.0, segment_gap_days={"wholesale": 90.0})


def customer(
    gap: float,
    orders: int,
    silent: float,
    amounts: list[float] | None = None,
    segment: str | None = None,
) -> Profile:
    """A customer who ordered ``orders`` times every ``gap`` days, the last ``silent`` days ago."""
    last = NOW - timedelta(days=silent)
    amounts = amounts or [100.0] * orders
    events = [
        Event("order", last - timedelta(days=gap * (orders - 1 - i)), amounts[i], amounts[i] / 4)
        for i in range(orders)
    ]
    return Profile.from_summary(summarize(events), 1, "c1", segment)


def score(profile: Profile) -> float:
    result = assess(profile, POP, NOW)
    assert result is not None
    return result.lapse_score


def test_weekly_buyer_quiet_three_weeks_outranks_quarterly_buyer_quiet_six_weeks() -> None:
    weekly = assess(customer(7, 20, 21), POP, NOW)
    quarterly = assess(customer(91, 8, 42, segment="wholesale"), POP, NOW)
    assert weekly is not None
    assert quarterly is not None
    assert weekly.lapse_ratio > 2.5
    assert quarterly.lapse_ratio < 1.0
    assert weekly.lapse_score > 0.5 > quarterly.lapse_score
    assert weekly.priority > quarterly.priority


def test_shrinking_account_is_flagged_while_still_ordering() -> None:
    amounts = [300.0] * 10 + [250.0, 200.0, 150.0, 110.0, 100.0, 90.0]
    result = assess(customer(14, 16, 5, amounts), POP, NOW)
    assert result is not None
    assert result.lapse_score < 0.5  # not silent
    assert result.declining
    assert "smaller than the ones before" in result.why
    assert result.value_at_risk > 0


def test_two_orders_shrink_toward_the_segment_gap_not_ignored_nor_trusted() -> None:
    two = customer(10, 2, 1, segment="wholesale")
    gap = expected_gap(two, POP)
    assert 10 < gap < 90
    many = customer(10, 16, 1, segment="wholesale")
    assert abs(expected_gap(many, POP) - 10) < abs(gap - 10)


def test_score_rises_with_silence_and_stays_a_probability() -> None:
    scores = [score(customer(14, 8, silent)) for silent in (0, 7, 14, 28, 56, 112, 400)]
    assert scores == sorted(scores)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[0] < 0.2
    assert scores[-1] > 0.95


def test_one_time_buyer_is_not_certainly_alive() -> None:
    # The flaw of BG/NBD's P(alive): every one-time buyer scores as alive. Not here.
    assert score(customer(30, 1, 200)) > 0.8


def test_explanations_read_like_a_person_wrote_them() -> None:
    regular = assess(customer(12, 16, 41), POP, NOW)
    assert regular is not None
    gap = regular.expected_gap_days  # their own 12 days, nudged slightly toward the 30 of all
    assert 12 <= gap < 13.5
    assert regular.why == (
        f"Usually orders every {gap:.0f} days; silent for 41 days ({41 / gap:.1f}× their rhythm)."
    )
    once = assess(customer(30, 1, 90), POP, NOW)
    assert once is not None
    assert once.why == (
        "Ordered once, 90 days ago; customers like them usually reorder within 30 days."
    )


def test_one_time_buyer_is_worth_their_one_order_not_an_extrapolated_habit() -> None:
    once = assess(customer(30, 1, 90, amounts=[800.0]), POP, NOW)
    assert once is not None
    assert once.value_per_year == 800.0


def test_population_is_fitted_per_segment_with_an_overall_fallback() -> None:
    profiles = [customer(g, 6, 1, segment="retail") for g in (6, 7, 8)] * 10
    profiles += [customer(90, 6, 1, segment="wholesale")] * 5
    population = fit_population((p.segment, p.typical_gap_days) for p in profiles)
    assert population.gap_for("retail") == pytest.approx(7.0)
    assert population.gap_for("wholesale") == population.typical_gap_days  # too few
    assert population.gap_for(None) == population.typical_gap_days


def test_gap_floor_is_never_above_the_expected_gap_whatever_the_prior() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    from reengage.detect import MIN_PRIOR_GAP, expected_gap_days, gap_floor

    @given(
        own=st.floats(0.5, 2000),
        orders=st.integers(1, 500),
        prior=st.floats(MIN_PRIOR_GAP, 3000),
    )
    def check(own: float, orders: int, prior: float) -> None:
        floor = gap_floor(own, orders)
        assert floor is not None
        assert floor <= expected_gap_days(own, orders, prior) * (1 + 1e-9)

    check()
