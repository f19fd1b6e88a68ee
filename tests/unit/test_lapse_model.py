"""The lapse score's two layers: the rhythm prior and the fitted logistic model."""

from __future__ import annotations

import math
import random

import pytest

from reengage.backtest import roc_auc
from reengage.lapse_model import Inputs, LapseModel, features, fit_logistic, rhythm_prior


def test_logistic_fit_recovers_known_coefficients() -> None:
    rng = random.Random(4)
    truth = (-0.5, 1.5, -2.0)
    rows, labels = [], []
    for _ in range(4000):
        x = [1.0, rng.gauss(0, 1), rng.gauss(0, 1)]
        z = sum(w * v for w, v in zip(truth, x, strict=True))
        rows.append(x)
        labels.append(rng.random() < 1 / (1 + math.exp(-z)))
    fitted = fit_logistic(rows, labels, ridge=0.0)
    assert fitted == pytest.approx(truth, abs=0.15)


def test_prior_is_a_probability_rising_with_silence() -> None:
    scores = [rhythm_prior(Inputs(s, 14.0, 10, 400.0, 50.0)) for s in (0, 7, 14, 28, 56, 200)]
    assert scores == sorted(scores)
    assert 0.0 < scores[0] < 0.1
    assert scores[-1] > 0.99


def test_prior_for_a_long_rhythm_allows_for_no_order_inside_the_horizon() -> None:
    # A quarterly buyer who ordered yesterday may well not order in the next 90 days,
    # while a weekly buyer who ordered yesterday almost surely will.
    quarterly = rhythm_prior(Inputs(1.0, 91.0, 8, 700.0, 500.0), horizon_days=90)
    weekly = rhythm_prior(Inputs(1.0, 7.0, 30, 210.0, 20.0), horizon_days=90)
    assert weekly < 0.1 < quarterly < 0.6


def test_one_time_buyer_long_gone_is_not_taken_for_alive() -> None:
    assert rhythm_prior(Inputs(300.0, 30.0, 1, 300.0, 40.0)) > 0.95


def test_fitted_model_learns_what_the_history_teaches() -> None:
    # A history where frequent buyers return and long silences do not: the fitted score
    # must rank that way, better than the prior alone.
    rng = random.Random(9)
    inputs, labels = [], []
    for _ in range(3000):
        orders = rng.randint(1, 20)
        gap = rng.choice([7.0, 30.0, 90.0])
        silent = rng.uniform(0, 300)
        i = Inputs(silent, gap, orders, silent + gap * orders, rng.uniform(10, 200))
        gone = rng.random() < 1 / (1 + math.exp(-(silent / 60 - math.log(orders))))
        inputs.append(i)
        labels.append(gone)
    weights = fit_logistic([features(i, 90.0) for i in inputs], labels)
    fitted = LapseModel(90.0, weights)
    prior = LapseModel(90.0)
    fitted_auc = roc_auc([fitted.score(i) for i in inputs], labels)
    prior_auc = roc_auc([prior.score(i) for i in inputs], labels)
    assert fitted_auc is not None
    assert prior_auc is not None
    assert fitted_auc > prior_auc
    assert fitted_auc > 0.75


def test_model_description_says_which_score_is_in_use() -> None:
    assert LapseModel().describe().startswith("rhythm prior")
