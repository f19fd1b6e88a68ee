"""The lapse score's default horizon follows the business's rhythm (reengage.horizon)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reengage.horizon import (
    MAX_HORIZON_DAYS,
    MIN_HORIZON_DAYS,
    MIN_REGULAR_BUYERS,
    HorizonSource,
    choose_horizon,
    horizon_for_gap,
    named_horizon,
)
from reengage.lapse_model import DEFAULT_HORIZON_DAYS


def regulars(gaps: list[float], orders: int = 6) -> list[tuple[int, float | None]]:
    return [(orders, gap) for gap in gaps]


def test_a_grocer_and_a_furniture_maker_get_different_horizons() -> None:
    grocer = choose_horizon(regulars([8.0, 9.0, 10.0] * 20))
    furniture = choose_horizon(regulars([100.0, 110.0, 120.0] * 20))
    assert grocer.days == 28.0  # 3 x 9 = 27 days, to whole weeks
    assert furniture.days == 329.0  # 3 x 110 = 330 days, to whole weeks
    assert grocer.source is furniture.source is HorizonSource.RHYTHM
    assert grocer.why() == (
        "chosen from your customers' rhythm: median gap 9 days among 60 regular buyers → "
        "horizon 28 days"
    )


def test_only_regular_buyers_set_the_rhythm() -> None:
    """One- and two-order customers (a single, noisy gap) do not move the horizon."""
    many_twos = [(2, 200.0)] * 500 + [(1, None)] * 500
    choice = choose_horizon(many_twos + regulars([9.0] * 40))
    assert choice.days == 28.0
    assert choice.regular_buyers == 40


def test_too_few_regular_buyers_keep_the_default_and_say_why() -> None:
    choice = choose_horizon(regulars([9.0] * (MIN_REGULAR_BUYERS - 1)) + [(2, 9.0)] * 100)
    assert choice.days == DEFAULT_HORIZON_DAYS
    assert choice.source is HorizonSource.DEFAULT
    assert f"only {MIN_REGULAR_BUYERS - 1} regular buyers" in choice.why()


def test_extreme_rhythms_are_kept_within_bounds_and_say_so() -> None:
    daily = choose_horizon(regulars([1.0] * 50))
    yearly = choose_horizon(regulars([400.0] * 50))
    assert (daily.days, yearly.days) == (MIN_HORIZON_DAYS, MAX_HORIZON_DAYS)
    assert "(kept within 14–364 days)" in daily.why()
    assert "(kept within 14–364 days)" in yearly.why()


def test_a_named_horizon_is_the_operators() -> None:
    choice = named_horizon(45.0)
    assert (choice.days, choice.source) == (45.0, HorizonSource.OPERATOR)
    assert choice.why() == "named by the operator (--horizon 45d)"
    with pytest.raises(ValueError, match="longer than zero"):
        named_horizon(0.0)


@given(st.floats(0.01, 5000.0), st.floats(0.01, 5000.0))
def test_the_horizon_is_whole_weeks_within_bounds_and_grows_with_the_gap(
    a: float, b: float
) -> None:
    low, high = sorted((a, b))
    h_low, h_high = horizon_for_gap(low), horizon_for_gap(high)
    assert MIN_HORIZON_DAYS <= h_low <= h_high <= MAX_HORIZON_DAYS
    assert h_low % 7 == 0 and h_high % 7 == 0


@given(st.lists(st.tuples(st.integers(0, 50), st.none() | st.floats(0.1, 1000.0)), max_size=80))
def test_any_history_gets_a_horizon_with_a_reason(
    customers: list[tuple[int, float | None]],
) -> None:
    choice = choose_horizon(customers)
    assert choice.days > 0
    assert str(int(choice.days)) in choice.why()


def test_the_regular_buyers_named_are_the_whole_bases_and_the_median_the_samples() -> None:
    """A sample of 40 regular buyers reads the median; the base has 4,357 of them."""
    choice = choose_horizon(regulars([9.0] * 40), regular_buyers=4357)
    assert (choice.source, choice.median_gap_days, choice.days) == (HorizonSource.RHYTHM, 9.0, 28)
    assert "median gap 9 days among 4,357 regular buyers → horizon 28 days" in choice.why()
    few = choose_horizon(regulars([9.0] * 40), regular_buyers=MIN_REGULAR_BUYERS - 1)
    assert few.source is HorizonSource.DEFAULT
    assert f"only {MIN_REGULAR_BUYERS - 1} regular buyers" in few.why()


def test_one_day_reads_as_one_day() -> None:
    assert named_horizon(1).describe() == "horizon 1 day, named by the operator (--horizon 1d)"
    daily = choose_horizon(regulars([1.0] * 40))
    assert "median gap 1 day among 40 regular buyers" in daily.why(), daily.why()
    alone = choose_horizon(regulars([1.0]), regular_buyers=1)
    assert "only 1 regular buyer (3+ orders)" in alone.why(), alone.why()
