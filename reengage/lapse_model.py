"""The lapse score: P(no order within the horizon), learned from the business's own history.

Two layers, both pure:

- :func:`rhythm_prior` — a renewal model that knows nothing of this business beyond the
  customer's own rhythm: gaps of a living habit are gamma-distributed (shape 2) around the
  expected gap, and a habit ends after an order with probability a / (a + b + repeats)
  (one-time buyers often never return; loyal ones rarely just stop). Bayes gives
  P(alive | silent s), hence P(no order within the horizon).
- :class:`LapseModel` — a logistic regression over numbers per customer (silence, orders,
  age, silence relative to rhythm, order value, the prior above, and the shape of their
  history: see :mod:`reengage.lapse_features`), fitted on the business's own history:
  scored as of ``T - horizon`` and labelled by who ordered again by ``T``. On real
  purchase histories (CDNOW, The Complete Journey) this ranking separates non-returners
  about as well as BG/NBD and a logistic RFM model or a little better (README), and is
  calibrated by construction. A model fitted before the shape features (seven weights)
  still scores with the first seven.

Until a model is fitted (too little history), the rhythm prior is the score.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from reengage.lapse_features import EXTRA, drivers, extra

DEFAULT_HORIZON_DAYS = 90.0
PRIOR_A, PRIOR_B = 1.0, 0.55  # habit-ending prior (fitted on CDNOW: a≈0.5–1.0, b≈0.5–0.6)
BASE_FEATURES = ("bias", "log_silent", "log_orders", "log_age", "log_ratio", "log_aov", "prior")
FEATURES = (*BASE_FEATURES, *EXTRA)


@dataclass(frozen=True, slots=True)
class Inputs:
    """The few numbers the score needs about one customer, as of a moment."""

    days_silent: float
    expected_gap_days: float
    orders: int
    age_days: float  # since their first order
    average_order_value: float
    # The shape of their history (None: not known, or too little history to say).
    own_gap_days: float | None = None  # their own median gap, before any shrinking
    prior_gap_days: float | None = None  # their segment's typical gap
    count_ratio: float | None = None  # usual gap ÷ recent gap (below 1: spacing out)
    aov_ratio: float | None = None  # recent ÷ earlier order value

    def later(self, days: float) -> Inputs:
        """The same customer ``days`` from now if nobody orders: more silent, and older."""
        return dataclasses.replace(
            self, days_silent=self.days_silent + days, age_days=self.age_days + days
        )


def _gamma2_survival(x: float) -> float:
    # P(gap > x · mean) for a gamma(shape 2) gap: e^{-2x} (1 + 2x).
    return math.exp(-2.0 * x) * (1.0 + 2.0 * x)


def rhythm_prior(inputs: Inputs, horizon_days: float = DEFAULT_HORIZON_DAYS) -> float:
    """P(no order within the horizon) from the customer's own rhythm alone."""
    gap = max(inputs.expected_gap_days, 0.5)
    repeats = max(inputs.orders - 1, 0)
    ended = PRIOR_A / (PRIOR_A + PRIOR_B + repeats)
    survive = _gamma2_survival(inputs.days_silent / gap)
    alive = (1.0 - ended) * survive / (ended + (1.0 - ended) * survive)
    if survive <= 0.0:
        return 1.0
    later = _gamma2_survival((inputs.days_silent + horizon_days) / gap) / survive
    return 1.0 - alive * (1.0 - later)


def features(inputs: Inputs, horizon_days: float, count: int = len(FEATURES)) -> list[float]:
    """The model's inputs for one customer (see :data:`FEATURES`); with ``count`` at most
    :data:`BASE_FEATURES`' length, only those (what a model fitted before issue 22 reads)."""
    prior = min(max(rhythm_prior(inputs, horizon_days), 1e-6), 1 - 1e-6)
    base = [
        1.0,
        math.log1p(inputs.days_silent),
        math.log(max(inputs.orders, 1)),
        math.log1p(inputs.age_days),
        math.log((inputs.days_silent + 1.0) / (inputs.expected_gap_days + 1.0)),
        math.log1p(max(inputs.average_order_value, 0.0)),
        math.log(prior / (1.0 - prior)),
    ]
    return base if count <= len(base) else base + extra(inputs)


@dataclass(frozen=True)
class LapseModel:
    """A fitted (or default) lapse score; ``weights`` None means the rhythm prior alone."""

    horizon_days: float = DEFAULT_HORIZON_DAYS
    weights: tuple[float, ...] | None = None
    fitted_as_of: datetime | None = None
    customers: int = 0

    def score(self, inputs: Inputs) -> float:
        """P(this customer places no order within the horizon)."""
        if self.weights is None:
            return rhythm_prior(inputs, self.horizon_days)
        row = features(inputs, self.horizon_days, len(self.weights))
        return probability(self.weights, row[: len(self.weights)])

    def drivers(self, inputs: Inputs) -> list[str]:
        """Which of the history's shape raised this customer's score, most first (see
        :func:`reengage.lapse_features.drivers`); none for the prior alone."""
        return self.explained(inputs)[1]

    def explained(self, inputs: Inputs) -> tuple[float, list[str]]:
        """:meth:`score` and :meth:`drivers` at once, from one row of features."""
        if self.weights is None:
            return rhythm_prior(inputs, self.horizon_days), []
        row = features(inputs, self.horizon_days, len(self.weights))
        score = probability(self.weights, row[: len(self.weights)])
        return score, [name for name, _ in drivers(self.weights, FEATURES, row)]

    def describe(self) -> str:
        """One line for people: which score is in use."""
        if self.weights is None:
            return f"rhythm prior (no fitted model yet); horizon {self._days()}"
        return (
            f"fitted on {self.customers} customers as of {self.fitted_as_of:%Y-%m-%d}; "
            f"horizon {self._days()}"
        )

    def _days(self) -> str:
        # reengage.i18n.days says it elsewhere; this layer stands below the words.
        whole = round(self.horizon_days)
        return f"{whole} day" if whole == 1 else f"{whole} days"


def probability(weights: Sequence[float], row: Sequence[float]) -> float:
    """The logistic model's output for one feature row."""
    return _sigmoid(sum(w * x for w, x in zip(weights, row, strict=True)))


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def fit_logistic(
    rows: Sequence[Sequence[float]],
    labels: Sequence[bool],
    ridge: float = 1.0,
    iterations: int = 25,
) -> tuple[float, ...]:
    """Ridge-regularised logistic regression by Newton's method (IRLS); pure Python.

    Small and dependable for the handful of features here: each step solves a d×d system.
    The bias is not penalised.
    """
    d = len(rows[0])
    w = [0.0] * d
    for _ in range(iterations):
        grad = [0.0] * d
        hess = [[0.0] * d for _ in range(d)]
        for x, y in zip(rows, labels, strict=True):
            p = _sigmoid(sum(wi * xi for wi, xi in zip(w, x, strict=True)))
            r = p - (1.0 if y else 0.0)
            s = p * (1.0 - p)
            for i in range(d):
                grad[i] += r * x[i]
                xi_s = x[i] * s
                row = hess[i]
                for j in range(i, d):
                    row[j] += xi_s * x[j]
        for i in range(d):
            for j in range(i):
                hess[i][j] = hess[j][i]
        for i in range(1, d):
            grad[i] += ridge * w[i]
            hess[i][i] += ridge
        step = _solve(hess, grad)
        w = [wi - si for wi, si in zip(w, step, strict=True)]
        if max(abs(si) for si in step) < 1e-6:
            break
    return tuple(w)


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (a is small and positive definite)."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        if abs(m[col][col]) < 1e-12:
            continue
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            for c in range(col, n + 1):
                m[r][c] -= f * m[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        if abs(m[r][r]) < 1e-12:
            continue
        x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


# How the score moves while a customer stays silent: what lets detection date a score rule
# (issue 19) instead of scoring the customer again at every pass. Nothing here changes a
# score; these only describe the functions above as silence goes on.

BOUND_SLACK = 1e-8  # bounds are widened by this much, well above the rounding of a score


def prior_turn(
    expected_gap_days: float, orders: int, horizon_days: float = DEFAULT_HORIZON_DAYS
) -> float:
    """The days of silence at which the rhythm prior stops falling and starts to rise.

    The prior is P(no order within the horizon) = 1 - alive · (1 - later). Silence makes
    the habit less likely alive (alive falls) but, if it is, an order more overdue (the
    chance of one within the horizon rises), so just after an order the prior can fall.
    With u = 2 · silence / gap, k = 2 · horizon / gap, A = 1 - e^-k, B = k e^-k and
    c = ended / (1 - ended), the derivative of the prior in u has the sign of
    c e^u (A u - B) - B, which is negative up to the one root u* > B / A and positive
    after it (on u > B / A the term only grows). So the prior falls on [0, u*] and rises
    from u* on: a valley. Returned in days, to the precision of a float.
    """
    gap = max(expected_gap_days, 0.5)
    ended = PRIOR_A / (PRIOR_A + PRIOR_B + max(orders - 1, 0))
    c = ended / (1.0 - ended)
    k = 2.0 * horizon_days / gap
    a, b = -math.expm1(-k), k * math.exp(-k)
    if a <= 0.0:  # no horizon: the prior is 1 whatever the silence
        return 0.0

    def rising(u: float) -> bool:
        return c * math.exp(u) * (a * u - b) - b >= 0.0

    low = b / a
    high = low + 1.0
    while not rising(high):  # c e^u grows fast: a few doublings at most
        high = low + 2.0 * (high - low)
    for _ in range(200):
        mid = (low + high) / 2.0
        if mid in (low, high):
            break
        if rising(mid):
            high = mid
        else:
            low = mid
    return (low + high) / 2.0 * gap / 2.0


class ScoreAhead:
    """One customer's lapse score ``t`` days from now if nobody orders (silence and age grow
    by ``t``), and bounds on it over a stretch of days.

    The bounds come from the shape of each part of the score in ``t``. The rhythm prior is
    a valley (:func:`prior_turn`): highest at an end of any stretch, lowest at the turn if
    the stretch holds it. A fitted model is a logistic function of a weighted sum whose
    moving parts are those of :data:`SILENCE` (each log(1 + silence) times a number that
    does not move, plus a constant: together monotone, whatever the signs of their
    weights), ``log_age``
    (monotone) and the prior's logit (a valley, or a hill when its weight is negative).
    Each part's largest and smallest value over the stretch is at an end or at the turn;
    their sums bound the sum, and the logistic function keeps the order. The bounds are
    widened by :data:`BOUND_SLACK`, so they hold for the scores as computed, too.
    """

    def __init__(self, model: LapseModel, now: Inputs) -> None:
        self.model = model
        self.now = now
        turn = prior_turn(now.expected_gap_days, now.orders, model.horizon_days)
        self.turn = turn - now.days_silent  # in days from now; may be behind us
        self._parts: dict[float, tuple[float, ...]] = {}

    def inputs(self, t: float) -> Inputs:
        """The score's inputs ``t`` days from now if nothing happens."""
        return self.now.later(t)

    def at(self, t: float) -> float:
        """The score ``t`` days from now, as :meth:`LapseModel.score` computes it."""
        return self.model.score(self.inputs(t))

    def bounds(self, t0: float, t1: float) -> tuple[float, float]:
        """The lowest and highest the score is at any moment from ``t0`` to ``t1`` days
        from now (``0 <= t0 <= t1``)."""
        turn_inside = t0 < self.turn < t1
        if self.model.weights is None:
            (p0,), (p1,) = self._at(t0), self._at(t1)
            low = self._at(self.turn)[0] if turn_inside else min(p0, p1)
            return low - BOUND_SLACK, max(p0, p1) + BOUND_SLACK
        fixed, *ends0 = self._at(t0)
        _, *ends1 = self._at(t1)
        high = low = fixed
        for v0, v1 in zip(ends0, ends1, strict=True):
            high += max(v0, v1)
            low += min(v0, v1)
        if turn_inside:  # the prior's part: a valley if its weight is positive, else a hill
            at_turn = self._at(self.turn)[3]
            if self.model.weights[_PRIOR] < 0:
                high += at_turn - max(ends0[2], ends1[2])
            else:
                low += at_turn - min(ends0[2], ends1[2])
        return _sigmoid(low) - BOUND_SLACK, _sigmoid(high) + BOUND_SLACK

    def _at(self, t: float) -> tuple[float, ...]:
        """The prior's value, or for a fitted model the weighted sum in four parts: the
        part that never moves, silence's, age's and the prior's."""
        parts = self._parts.get(t)
        if parts is None:
            inputs = self.inputs(t)
            w = self.model.weights
            if w is None:
                parts = (rhythm_prior(inputs, self.model.horizon_days),)
            else:
                x = features(inputs, self.model.horizon_days, len(w))
                sums = [0.0, 0.0, 0.0, 0.0]
                for i, weight in enumerate(w):
                    sums[_PART[i]] += weight * x[i]
                parts = tuple(sums)
            self._parts[t] = parts
        return parts


SILENCE = (
    "log_silent",
    "log_ratio",
    "ratio_x_orders",
    "silent_x_orders",
    "trend_x_ratio",
    "spread_x_ratio",
)
_PRIOR = FEATURES.index("prior")
# Which part of ScoreAhead's sum each feature is in: 0 fixed, 1 silence, 2 age, 3 prior.
_PART = [
    1 if name in SILENCE else 2 if name == "log_age" else 3 if name == "prior" else 0
    for name in FEATURES
]
