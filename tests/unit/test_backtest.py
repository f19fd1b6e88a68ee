"""Ranking metrics against values worked out by hand."""

from __future__ import annotations

import pytest

from reengage.backtest import calibration, precision_at, roc_auc
from reengage.backtesting import compared_horizons, left_out


def test_auc_perfect_inverse_and_ties() -> None:
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == 1.0
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], [True, False, True, False]) == 0.5
    # one positive above both negatives, one between them: 3 of 4 pairs ordered right
    assert roc_auc([0.9, 0.5, 0.6, 0.1], [True, True, False, False]) == 0.75


def test_auc_needs_both_classes() -> None:
    assert roc_auc([0.1, 0.2], [True, True]) is None


def test_precision_of_the_top() -> None:
    scores = [i / 10 for i in range(10)]
    labels = [False] * 8 + [True, False]
    assert precision_at(scores, labels, 0.2) == 0.5
    assert precision_at(scores, labels, 0.1) == 0.0


def test_calibration_bands() -> None:
    rows = calibration([0.05, 0.05, 0.95, 0.95, 1.0], [False, True, True, True, False], bands=10)
    assert [(r.low, r.count) for r in rows] == [(0.0, 2), (0.9, 3)]
    assert rows[0].observed == 0.5
    assert rows[1].predicted == pytest.approx((0.95 + 0.95 + 1.0) / 3)


@pytest.mark.parametrize(
    ("days", "rows", "missing"),
    [(1.0, [1.0, 2.0], [0.5]), (2.0, [1.0, 2.0, 4.0], []), (28.0, [14.0, 28.0, 56.0], [])],
)
def test_every_compared_horizon_has_a_row_or_is_named_as_left_out(
    days: float, rows: list[float], missing: list[float]
) -> None:
    """Half of one day is not a whole day: it gets no row, and the backtest says so."""
    assert compared_horizons(days) == rows
    assert left_out(days) == missing
