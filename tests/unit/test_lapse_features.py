"""The shape of a customer's history that the lapse score learns from (issue 22): each
feature computed right on small hand-made histories, the bulk form equal to the one by one
form, the fit, and a "why" that names what drove the score."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reengage.backtest import roc_auc
from reengage.detect import Population, Profile, assess, expected_gap_days, inputs_of
from reengage.history import Event, summarize
from reengage.lapse_features import extra, extra_array, fit_weights
from reengage.lapse_model import BASE_FEATURES, FEATURES, Inputs, LapseModel, features

NOW = datetime(2026, 11, 1, tzinfo=UTC)
POP = Population(typical_gap_days=30.0)


def history(days: list[float], silent: float, amounts: list[float] | None = None) -> Profile:
    """Orders on these days (from the first), the last one ``silent`` days before NOW."""
    last = NOW - timedelta(days=silent)
    amounts = amounts or [100.0] * len(days)
    events = [
        Event("order", last - timedelta(days=days[-1] - d), a, a / 4)
        for d, a in zip(days, amounts, strict=True)
    ]
    return Profile.from_summary(summarize(events), 1, "c1", None)


def shape(profile: Profile) -> dict[str, float]:
    inputs = inputs_of(profile, POP, NOW)
    assert inputs is not None
    return dict(zip(FEATURES, features(inputs, 90.0), strict=True))


def test_a_steady_weekly_buyer_has_no_trend_no_spread_and_a_faster_rhythm_than_peers() -> None:
    f = shape(history([7.0 * i for i in range(8)], silent=14))
    gap = expected_gap_days(7.0, 8, 30.0)
    assert f["own_vs_peers"] == pytest.approx(math.log(7 / 30))
    assert f["has_own"] == 1.0
    assert f["has_trend"] == 1.0
    assert f["gap_trend"] == pytest.approx(0.0, abs=1e-12)
    assert f["value_trend"] == pytest.approx(0.0, abs=1e-12)
    assert f["spread"] == pytest.approx(0.0, abs=1e-12)
    assert f["ratio_x_orders"] == pytest.approx(math.log(15 / (gap + 1)) * math.log(8))
    assert f["silent_x_orders"] == pytest.approx(math.log(15) * math.log(8))


def test_a_buyer_spacing_out_with_smaller_baskets_shows_both_trends_and_the_spread() -> None:
    # Six orders a week apart, then three a fortnight apart, at half the value.
    days = [0.0, 7, 14, 21, 28, 35, 49, 63, 77]
    f = shape(history(days, silent=10, amounts=[100.0] * 6 + [50.0] * 3))
    gap = expected_gap_days(7.0, 9, 30.0)  # the median gap is still 7
    assert f["gap_trend"] == pytest.approx(math.log(7 / 14))  # usual 7 ÷ recent 14
    assert f["value_trend"] == pytest.approx(math.log(0.5))
    assert f["trend_x_ratio"] == pytest.approx(math.log(0.5) * math.log(11 / (gap + 1)))
    assert f["spread"] == pytest.approx(math.log((77 / 8 + 1) / (7 + 1)))  # mean 9.6 vs 7
    assert f["spread_x_ratio"] == pytest.approx(f["spread"] * math.log(11 / (gap + 1)))


def test_short_histories_say_nothing_of_what_they_cannot_know() -> None:
    two = shape(history([0.0, 20.0], silent=5))
    assert two["has_trend"] == 0.0
    assert two["gap_trend"] == two["value_trend"] == two["trend_x_ratio"] == 0.0
    assert two["own_vs_peers"] == pytest.approx(math.log(20 / 30))
    assert two["spread"] == pytest.approx(0.0, abs=1e-12)  # one gap: its mean is its median
    one = shape(history([0.0], silent=5))
    assert one["has_own"] == one["own_vs_peers"] == one["spread"] == one["has_trend"] == 0.0
    assert one["ratio_x_orders"] == one["silent_x_orders"] == 0.0  # log(1 order) = 0


_maybe = st.one_of(st.none(), st.floats(0.01, 50.0))


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0.0, 900.0),
    st.floats(0.5, 400.0),
    st.integers(0, 60),
    st.floats(0.0, 900.0),
    _maybe,
    _maybe,
    _maybe,
    _maybe,
)
def test_the_bulk_features_are_the_one_by_one_features(
    silent: float,
    gap: float,
    orders: int,
    older: float,
    own: float | None,
    prior: float | None,
    count: float | None,
    value: float | None,
) -> None:
    one = extra(Inputs(silent, gap, orders, silent + older, 10.0, own, prior, count, value))

    def column(v: float | None) -> np.ndarray:
        return np.array([np.nan if v is None else v])

    bulk = extra_array(
        column(silent),
        column(gap),
        column(float(orders)),
        column(silent + older),
        column(own),
        column(prior),
        column(count),
        column(value),
    )
    assert [float(b[0]) for b in bulk] == pytest.approx(one, rel=1e-12, abs=1e-12)


def test_the_fit_recovers_known_coefficients_on_the_raw_scale() -> None:
    rng = np.random.default_rng(4)
    x = np.column_stack([np.ones(20_000), rng.normal(5, 3, 20_000), rng.normal(-2, 0.5, 20_000)])
    truth = np.array([-0.5, 0.4, 1.5])
    labels = rng.random(20_000) < 1 / (1 + np.exp(-(x @ truth)))
    fitted = fit_weights(x.tolist(), labels.tolist(), ridge=0.0)
    assert fitted == pytest.approx(truth.tolist(), abs=0.25)


def test_a_history_where_spacing_out_foretells_leaving_is_learnt_from() -> None:
    # Silence alone says little here; whether visits were spacing out says much.
    rng = random.Random(9)
    inputs, labels = [], []
    for _ in range(3000):
        count = rng.choice([None, rng.uniform(0.3, 1.5)])
        silent = rng.uniform(0, 60)
        i = Inputs(silent, 14.0, 12, silent + 200, 50.0, 14.0, 14.0, count, 1.0)
        leaving = -2.5 * math.log(count) if count is not None else 0.0
        labels.append(rng.random() < 1 / (1 + math.exp(-(leaving + silent / 60 - 1.0))))
        inputs.append(i)
    rows = [features(i, 90.0) for i in inputs]
    shaped = LapseModel(90.0, fit_weights(rows, labels), NOW, len(rows))
    plain = LapseModel(90.0, fit_weights([r[: len(BASE_FEATURES)] for r in rows], labels))
    shaped_auc = roc_auc([shaped.score(i) for i in inputs], labels)
    plain_auc = roc_auc([plain.score(i) for i in inputs], labels)
    assert shaped_auc is not None and plain_auc is not None
    assert shaped_auc > plain_auc + 0.05
    slowing = Inputs(40.0, 14.0, 12, 240.0, 50.0, 14.0, 14.0, 0.5, 1.0)
    assert shaped.drivers(slowing)[0] == "gap_trend"


def _model(**weights: float) -> LapseModel:
    """A fitted model whose score is the rhythm prior's plus the given features' pushes."""
    w = dict.fromkeys(FEATURES, 0.0) | {"prior": 1.0} | weights
    return LapseModel(90.0, tuple(w[name] for name in FEATURES), NOW, 500)


def test_the_why_names_the_feature_that_drove_the_score() -> None:
    # Orders a week apart, then three 9 days apart: spacing out, but not by the 30% that
    # the decline line would say on its own.
    slowing = history([0.0, 7, 14, 21, 28, 35, 44, 53, 62], silent=12)
    assert slowing.count_ratio == pytest.approx(7 / 9)
    driven = assess(slowing, POP, NOW, _model(gap_trend=-3.0))
    neutral = assess(slowing, POP, NOW, _model())
    assert driven is not None and neutral is not None
    assert driven.lapse_score > neutral.lapse_score
    assert "Their last orders came further apart than their usual rhythm." in driven.why
    assert "further apart" not in neutral.why
    assert driven.inputs is not None
    assert _model(gap_trend=-3.0).drivers(driven.inputs) == ["gap_trend"]

    slow = history([0.0, 60, 120, 180], silent=70)  # every 60 days; customers like them 30
    peers = assess(slow, POP, NOW, _model(own_vs_peers=2.0))
    assert peers is not None
    assert "They order less often than customers like them (every 60 days" in peers.why
    # a push against lapsing is not a reason it lapsed
    against = assess(slow, POP, NOW, _model(own_vs_peers=-2.0))
    assert against is not None
    assert "customers like them (every" not in against.why


def test_a_model_fitted_before_the_shape_features_still_scores_as_it_did() -> None:
    old = LapseModel(90.0, (-4.0, 0.8, -0.2, 0.1, 0.3, 0.0, 0.5), NOW, 500)
    i = Inputs(30.0, 14.0, 6, 200.0, 50.0, 14.0, 20.0, 0.5, 0.5)
    plain = Inputs(30.0, 14.0, 6, 200.0, 50.0)
    row = features(plain, 90.0)[: len(BASE_FEATURES)]
    expected = 1 / (1 + math.exp(-sum(w * x for w, x in zip(old.weights or (), row, strict=True))))
    assert old.score(i) == pytest.approx(expected, rel=1e-12)
    assert old.drivers(i) == []
