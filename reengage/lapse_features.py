"""What the fitted lapse score learns beyond recency, frequency and one gap (issue 22).

:func:`reengage.lapse_model.features` is the seven original inputs (silence, orders, age,
silence against rhythm, order value, the rhythm prior) followed by :data:`EXTRA`, the shape
of the customer's own history, all from the running stats:

- ``ratio_x_orders``, ``silent_x_orders``: silence weighs differently for a customer with
  many orders than for a one- or two-time buyer (log silence × log orders);
- ``own_vs_peers`` (with ``has_own``): their own median gap against their segment's, on
  the log scale — faster or slower than customers like them;
- ``gap_trend``, ``value_trend`` (with ``has_trend``), ``trend_x_ratio``: the last three
  buying occasions against the ones before (``count_ratio`` and ``aov_ratio`` of
  :meth:`reengage.history.Summary.declines`): visits spacing out, baskets shrinking;
- ``spread``, ``spread_x_ratio``: their mean gap over their whole life against their
  median gap — an irregular buyer's long silence says less than a metronome's.

Every feature either never moves while a customer stays silent, or is log(1 + silence)
times a number that does not (so the score's silence part stays monotone: what
:class:`reengage.lapse_model.ScoreAhead` bounds rely on). Time of year (of the last order)
was tried and left out: on CDNOW, a single cohort, it learnt the cohort's calendar and
ranked worse out of time. LightGBM was tried too and ranked worse than this logistic model
on both benches (see README, "Who has lapsed, and why").

The model is fitted by :func:`fit_weights` (ridge logistic regression in numpy, on
standardised columns, returned on the raw scale), and :func:`drivers` tells which of the
history's shape pushed a score up the most — what :func:`reengage.detect.explain` says.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


class Inputs(Protocol):
    """What the features read of :class:`reengage.lapse_model.Inputs` (a layer above)."""

    @property
    def days_silent(self) -> float: ...
    @property
    def expected_gap_days(self) -> float: ...
    @property
    def orders(self) -> int: ...
    @property
    def age_days(self) -> float: ...
    @property
    def own_gap_days(self) -> float | None: ...
    @property
    def prior_gap_days(self) -> float | None: ...
    @property
    def count_ratio(self) -> float | None: ...
    @property
    def aov_ratio(self) -> float | None: ...


EXTRA = (
    "ratio_x_orders",
    "silent_x_orders",
    "own_vs_peers",
    "has_own",
    "gap_trend",
    "value_trend",
    "has_trend",
    "trend_x_ratio",
    "spread",
    "spread_x_ratio",
)
RATIO_CLIP = (0.05, 20.0)  # a decline ratio beyond this says nothing more
# Which features a rep is told about, and how (see :func:`drivers`).
DRIVERS = {
    "gap_trend": ("gap_trend", "trend_x_ratio"),
    "value_trend": ("value_trend",),
    "own_vs_peers": ("own_vs_peers",),
    "spread": ("spread", "spread_x_ratio"),
}
DRIVER_MIN_LOGIT = 0.15  # a push smaller than this (about 3 points of probability) goes unsaid


def _clipped_log(ratio: float) -> float:
    return math.log(min(max(ratio, RATIO_CLIP[0]), RATIO_CLIP[1]))


def extra(inputs: Inputs) -> list[float]:
    """The :data:`EXTRA` features of one customer."""
    silent, gap, orders = inputs.days_silent, inputs.expected_gap_days, inputs.orders
    ratio = math.log((silent + 1.0) / (gap + 1.0))
    log_orders = math.log(max(orders, 1))
    own, prior = inputs.own_gap_days, inputs.prior_gap_days
    has_own = own is not None and own > 0 and prior is not None and prior > 0
    own_vs_peers = math.log(own / prior) if has_own else 0.0  # type: ignore[operator]
    has_trend = inputs.count_ratio is not None
    gap_trend = _clipped_log(inputs.count_ratio) if inputs.count_ratio is not None else 0.0
    value_trend = (
        _clipped_log(inputs.aov_ratio) if has_trend and inputs.aov_ratio is not None else 0.0
    )
    spread = 0.0
    if own is not None and own > 0 and orders > 1:
        mean_gap = max(inputs.age_days - silent, 0.0) / (orders - 1)
        spread = math.log((mean_gap + 1.0) / (own + 1.0))
    return [
        ratio * log_orders,
        math.log1p(silent) * log_orders,
        own_vs_peers,
        1.0 if has_own else 0.0,
        gap_trend,
        value_trend,
        1.0 if has_trend else 0.0,
        gap_trend * ratio,
        spread,
        spread * ratio,
    ]


def extra_array(
    silent: Floats,
    gap: Floats,
    orders: Floats,
    age: Floats,
    own: Floats,
    prior: Floats,
    count_ratio: Floats,
    aov_ratio: Floats,
) -> list[Floats]:
    """:func:`extra` for many customers at once (NaN where the scalar has None)."""
    ratio = np.log((silent + 1.0) / (gap + 1.0))
    log_orders = np.log(np.maximum(orders, 1.0))
    has_own = ~np.isnan(own) & (own > 0) & ~np.isnan(prior) & (prior > 0)
    safe_own = np.where(has_own, own, 1.0)
    own_vs_peers = np.where(has_own, np.log(safe_own / np.where(has_own, prior, 1.0)), 0.0)
    has_trend = ~np.isnan(count_ratio)
    gap_trend = np.where(
        has_trend, np.log(np.clip(np.nan_to_num(count_ratio, nan=1.0), *RATIO_CLIP)), 0.0
    )
    known_value = has_trend & ~np.isnan(aov_ratio)
    value_trend = np.where(
        known_value, np.log(np.clip(np.nan_to_num(aov_ratio, nan=1.0), *RATIO_CLIP)), 0.0
    )
    own_ok = ~np.isnan(own) & (own > 0) & (orders > 1)
    mean_gap = np.maximum(age - silent, 0.0) / np.maximum(orders - 1.0, 1.0)
    spread = np.where(own_ok, np.log((mean_gap + 1.0) / (np.where(own_ok, own, 1.0) + 1.0)), 0.0)
    return [
        ratio * log_orders,
        np.log1p(silent) * log_orders,
        own_vs_peers,
        has_own.astype(np.float64),
        gap_trend,
        value_trend,
        has_trend.astype(np.float64),
        gap_trend * ratio,
        spread,
        spread * ratio,
    ]


def fit_weights(
    rows: Sequence[Sequence[float]], labels: Sequence[bool], ridge: float = 1.0
) -> tuple[float, ...]:
    """Ridge logistic regression by Newton's method, in numpy; the first column is the bias.

    Columns are standardised for the fit (so the ridge weighs every feature alike; the
    bias is not penalised) and the weights are returned for the raw columns. A million
    rows of seventeen columns take a few seconds.
    """
    x = np.asarray(rows, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    mean = x[:, 1:].mean(axis=0)
    scale = x[:, 1:].std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = np.column_stack([np.ones(len(x)), (x[:, 1:] - mean) / scale])
    penalty = np.diag([0.0] + [ridge] * (z.shape[1] - 1))
    w = np.zeros(z.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        hessian = (z * (p * (1.0 - p))[:, None]).T @ z + penalty
        step = np.linalg.lstsq(hessian, z.T @ (p - y) + penalty @ w, rcond=None)[0]
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    raw = w[1:] / scale
    return (float(w[0] - raw @ mean), *(float(v) for v in raw))


def drivers(
    weights: Sequence[float], names: Sequence[str], row: Sequence[float]
) -> list[tuple[str, float]]:
    """What of the history's shape raised this score, most first: ``(driver, logit)`` for
    each of :data:`DRIVERS` whose features add at least :data:`DRIVER_MIN_LOGIT` to the
    model's log-odds. Each of them is 0 for a steady, ordinary history (trend ratios of
    1, their own gap their segment's, mean gap their median), so what they add is their
    weight times their value."""
    index = {name: i for i, name in enumerate(names)}
    found = []
    for driver, members in DRIVERS.items():
        push = sum(weights[index[m]] * row[index[m]] for m in members if index[m] < len(weights))
        if push >= DRIVER_MIN_LOGIT:
            found.append((driver, push))
    return sorted(found, key=lambda d: -d[1])
