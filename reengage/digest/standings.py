"""What a list ranks a customer by (:class:`Standing`), one by one and a rep's rows at once.

:func:`standing` works out a customer's standing from their stats row with the arithmetic
of :func:`reengage.detect.assess`, bit for bit, without the words. A list counts every
flagged customer of the rep (some value, and a lapse score of :data:`MIN_LAPSE_SCORE` or
more, or shrinking orders) and shows the top ones by priority, so it needs the standing
of each of the rep's ten thousand customers with some value: 17 µs a row one by one in
Python, a microsecond or two over arrays (:func:`all_standings`, NumPy). The arrays follow
:func:`standing` step for step, so most numbers are the very floats it gives (days
silent, age, span, shrink and the shrinking test are plain IEEE arithmetic on exact
microseconds); only ``exp``, ``log`` and ``pow`` may round differently from :mod:`math`
in the last bit, so the expected gap, the lapse score, a repeat buyer's value and the
priority are approximations, within :func:`margin` of themselves.

Lists must be bit for bit those of scoring everyone one by one, so nothing is decided on
an approximation that could go either way:

- who is flagged is decided exactly: a row whose approximate score lies within the margin
  of the threshold (or is not a finite number) is scored again one by one;
- who makes the top of a list is decided exactly: :meth:`Standings.best` scores one by
  one only the rows whose approximate priority could reach the cut (:func:`top_rows`),
  and the list is ranked on those exact priorities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from reengage.detect import (
    DECLINE_THRESHOLD,
    PRIOR_GAPS,
    YEAR_DAYS,
    Assessment,
    Population,
    expected_gap_days,
    shrink_of,
    value_per_year_of,
)
from reengage.lapse_features import extra_array
from reengage.lapse_model import PRIOR_A, PRIOR_B, Inputs, LapseModel
from reengage.store.rep_stats import RepStats, ValuedRow

MIN_LAPSE_SCORE = 0.5  # detection alone lists a customer from this lapse score up
Floats = npt.NDArray[np.float64]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_US = 86400.0


class Standing(NamedTuple):
    """What a list ranks a customer by: the numbers of their assessment, without its words."""

    days_silent: float
    lapse_score: float
    shrink: float  # how much the orders shrank: 1 − the smallest decline ratio (0 if none)
    shrinking: bool  # a decline ratio at or below the threshold
    value_per_year: float

    @property
    def flagged(self) -> bool:
        """Detection alone lists them: some value, and a lapsed habit or shrinking orders."""
        return self.value_per_year > 0 and (self.lapse_score >= MIN_LAPSE_SCORE or self.shrinking)


def standing_of(a: Assessment) -> Standing:
    """The standing an assessment holds."""
    p = a.profile
    return Standing(
        a.days_silent,
        a.lapse_score,
        shrink_of(p.margin_ratio, p.aov_ratio, p.count_ratio),
        shrinking(p.margin_ratio, p.aov_ratio, p.count_ratio),
        a.value_per_year,
    )


def standing(
    row: ValuedRow, population: Population, model: LapseModel, now: datetime
) -> Standing | None:
    """A customer's standing from their stats row, as :func:`reengage.detect.assess` would
    compute it (the same operations in the same order, so the same floats); None if they
    never did anything. Tests hold the two to bit-for-bit equality."""
    last = row.last_order_at or row.last_activity_at
    if last is None:
        return None
    first = row.first_order_at or last
    orders = max(row.order_count, 1)
    silent = max((now - last).total_seconds() / 86400.0, 0.0)
    prior = population.gap_for(row.segment)
    gap = expected_gap_days(row.typical_gap_days, row.order_count, prior)
    age = max((now - first).total_seconds() / 86400.0, 0.0)
    inputs = Inputs(
        silent,
        gap,
        row.order_count,
        age,
        row.total_value / orders,
        row.typical_gap_days,
        prior,
        row.count_ratio,
        row.aov_ratio,
    )
    score = model.score(inputs)
    span = 0.0
    if row.first_order_at and row.last_order_at:
        span = (row.last_order_at - row.first_order_at).total_seconds() / 86400.0
    value = value_per_year_of(row.total_value, row.order_count, span, gap)
    ratios = (row.margin_ratio, row.aov_ratio, row.count_ratio)
    return Standing(silent, score, shrink_of(*ratios), shrinking(*ratios), value)


def shrinking(*ratios: float | None) -> bool:
    """A decline ratio at or below :data:`~reengage.detect.DECLINE_THRESHOLD`."""
    return any(r is not None and r <= DECLINE_THRESHOLD for r in ratios)


def plain_priority(s: Standing) -> float:
    """:attr:`Candidate.priority` of a flagged customer with no call and no reply."""
    return float(
        s.value_per_year * max(s.lapse_score, s.shrink, 0.0) * 0.5 ** (s.days_silent / YEAR_DAYS)
    )


def margin(model: LapseModel) -> float:
    """How far (relative to itself) an approximate score or priority may be from the exact.

    NumPy's ``exp``/``log`` differ from :mod:`math` by an ulp or two (about 1e-16); the
    score carries that through a few steps, the worst being the prior's logit near its
    clamp (1 − 1e-6: an ulp of 1 is 1e-10 of that) under the model's weights. Observed
    differences are below 1e-13; the margin is a thousand times the worst case found by
    reasoning, and costs only a few more rows scored exactly.
    """
    weights = model.weights or ()
    return 1e-7 * (1.0 + sum(abs(w) for w in weights))


@dataclass
class Standings:
    """The standings of one rep's stats rows (:class:`RepStats`), index by index.

    ``flagged`` is exact for every row; ``priority`` (:func:`plain_priority`) is exact for
    the rows already scored one by one and within :attr:`margin` of it for the others.
    ``present``: the customer did something (else they have no standing at all).
    """

    stats: RepStats
    present: npt.NDArray[np.bool_]
    flagged: npt.NDArray[np.bool_]
    priority: Floats
    margin: float
    _exact: Callable[[int], Standing | None]
    _near: tuple[Floats, ...] = ()  # days silent, score, shrink, shrinking, value
    _known: dict[int, Standing | None] = field(default_factory=dict)

    def approximate(self, i: int) -> Standing | None:
        """Row ``i``'s standing as the arrays have it: exact where already scored one by
        one, else each number within :attr:`margin` of the exact one (its ``flagged`` may
        be wrong: :attr:`flagged` is not)."""
        if i in self._known or not self._near:
            return self.exact(i)
        if not self.present[i]:
            return None
        silent, score, shrink, declining, value = (float(a[i]) for a in self._near)
        return Standing(silent, score, shrink, bool(declining), value)

    def best(self, rows: npt.NDArray[np.intp], size: int) -> list[tuple[float, int, Standing]]:
        """Of ``rows`` (flagged ones), every row whose exact priority may be among the
        ``size`` highest of them, with that priority, its customer and standing."""
        found = []
        for i in rows[top_rows(self.priority[rows], size, self.margin)].tolist():
            s = self.exact(i)
            if s is not None:
                found.append((plain_priority(s), int(self.stats.customer_id[i]), s))
        return found

    def exact(self, i: int) -> Standing | None:
        """Row ``i``'s standing computed one by one, as :func:`reengage.detect.assess` would."""
        if i not in self._known:
            self._known[i] = self._exact(i)
        return self._known[i]


def all_standings(
    stats: RepStats, population: Population, model: LapseModel, now: datetime
) -> Standings:
    """Every row's standing at ``now`` under ``population`` and ``model`` (see the module)."""

    def exact(i: int) -> Standing | None:
        return standing(stats.row(i), population, model, now)

    count = len(stats)
    if count == 0:
        empty = np.zeros(0, dtype=bool)
        return Standings(stats, empty, empty, np.zeros(0), margin(model), exact)
    now_us = float((now - _EPOCH) // timedelta(microseconds=1))
    with np.errstate(all="ignore"):
        found = _approximate(stats, population, model, now_us)
    present, flagged, priority, columns = found
    score = columns[1]
    near = margin(model)
    unsure = present & (
        ~np.isfinite(score) | ~np.isfinite(priority) | (np.abs(score - MIN_LAPSE_SCORE) <= near)
    )
    result = Standings(stats, present, flagged, priority, near, exact, columns)
    for i in np.flatnonzero(unsure).tolist():
        s = result.exact(i)
        flagged[i] = s is not None and s.flagged
        priority[i] = plain_priority(s) if s is not None else 0.0
    return result


def _days_between(later: Floats | float, earlier: Floats) -> Floats:
    # (later - earlier).total_seconds() / 86400.0: microseconds are whole numbers below
    # 2**53, so the difference is exact, and dividing by 10**6 rounds as Python does.
    result: Floats = (later - earlier) / 1e6 / _DAY_US
    return result


def _approximate(
    stats: RepStats, population: Population, model: LapseModel, now_us: float
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], Floats, tuple[Floats, ...]]:
    """Who did something, who is flagged, the priority and the standings' numbers (days
    silent, score, shrink, shrinking, value), all rows at once;
    step for step :func:`standing`."""
    first_order, last_order = stats.first_order_us, stats.last_order_us
    last = np.where(np.isnan(last_order), stats.last_activity_us, last_order)
    present = ~np.isnan(last)
    first = np.where(np.isnan(first_order), last, first_order)
    order_count = stats.order_count.astype(np.float64)
    total = stats.total_value
    silent = np.maximum(_days_between(now_us, last), 0.0)
    gaps = [population.typical_gap_days, *(population.gap_for(s) for s in stats.segments)]
    prior_gap = np.array(gaps, dtype=np.float64)[stats.segment]
    gap = _expected_gap(stats.typical_gap_days, order_count, prior_gap)
    age = np.maximum(_days_between(now_us, first), 0.0)
    aov = total / np.maximum(order_count, 1.0)
    shape = extra_array(
        silent,
        gap,
        order_count,
        age,
        stats.typical_gap_days,
        prior_gap,
        stats.count_ratio,
        stats.aov_ratio,
    )
    score = _score(model, silent, gap, order_count, age, aov, shape)
    both = ~np.isnan(first_order) & ~np.isnan(last_order)
    span = np.where(both, _days_between(last_order, first_order), 0.0)
    value = np.where(
        total <= 0,
        0.0,
        np.where(order_count < 2, total, total * YEAR_DAYS / np.maximum(span + gap, 90.0)),
    )
    ratios = [stats.margin_ratio, stats.aov_ratio, stats.count_ratio]
    least = np.ones(len(stats))
    declining = np.zeros(len(stats), dtype=bool)
    for r in ratios:
        known = ~np.isnan(r)
        least = np.where(known, np.minimum(least, r), least)
        declining |= known & (r <= DECLINE_THRESHOLD)
    shrink = 1.0 - least
    flagged = present & (value > 0) & ((score >= MIN_LAPSE_SCORE) | declining)
    certainty = np.maximum(np.maximum(score, shrink), 0.0)
    priority = value * certainty * np.power(0.5, silent / YEAR_DAYS)
    columns = (silent, score, shrink, declining.astype(np.float64), value)
    return present, flagged, np.where(present, priority, 0.0), columns


def _expected_gap(own: Floats, order_count: Floats, prior: Floats) -> Floats:
    # reengage.detect.expected_gap_days
    n = np.minimum(np.maximum(order_count - 1.0, 1.0), 15.0)
    shrunk = np.exp((n * np.log(own) + PRIOR_GAPS * np.log(prior)) / (n + PRIOR_GAPS))
    result: Floats = np.where(np.isnan(own), prior, shrunk)
    return result


def _survival(x: Floats) -> Floats:
    result: Floats = np.exp(-2.0 * x) * (1.0 + 2.0 * x)
    return result


def _rhythm_prior(
    silent: Floats, expected_gap: Floats, orders: Floats, horizon_days: float
) -> Floats:
    # reengage.lapse_model.rhythm_prior
    gap = np.maximum(expected_gap, 0.5)
    repeats = np.maximum(orders - 1.0, 0.0)
    ended = PRIOR_A / (PRIOR_A + PRIOR_B + repeats)
    survive = _survival(silent / gap)
    alive = (1.0 - ended) * survive / (ended + (1.0 - ended) * survive)
    later = _survival((silent + horizon_days) / gap) / survive
    result: Floats = np.where(survive <= 0.0, 1.0, 1.0 - alive * (1.0 - later))
    return result


def _score(
    model: LapseModel,
    silent: Floats,
    gap: Floats,
    orders: Floats,
    age: Floats,
    aov: Floats,
    shape: list[Floats],
) -> Floats:
    # reengage.lapse_model.LapseModel.score, features and probability
    prior = _rhythm_prior(silent, gap, orders, model.horizon_days)
    if model.weights is None:
        return prior
    prior = np.minimum(np.maximum(prior, 1e-6), 1 - 1e-6)
    features = [
        np.ones_like(silent),
        np.log1p(silent),
        np.log(np.maximum(orders, 1.0)),
        np.log1p(age),
        np.log((silent + 1.0) / (gap + 1.0)),
        np.log1p(np.maximum(aov, 0.0)),
        np.log(prior / (1.0 - prior)),
        *shape,
    ]
    z = np.zeros_like(silent)
    for w, x in zip(model.weights, features[: len(model.weights)], strict=True):
        z = z + w * x
    e = np.exp(-np.abs(z))
    result: Floats = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return result


def top_rows(priority: Floats, size: int, near: float) -> npt.NDArray[np.intp]:
    """The indexes of every row whose exact priority could be among the ``size`` highest,
    given priorities within ``near`` (relative) of the exact ones: the exact top is then
    the top of these, scored exactly.

    If the ``size``-th highest approximate priority is ``a``, at least ``size`` rows are
    exactly worth ``a·(1 − near)`` or more, so a row of the exact top is worth that much
    too, and its approximation at least ``a·(1 − near)² ≥ a·(1 − 2·near)``.
    """
    if len(priority) <= size:
        return np.arange(len(priority))
    if size <= 0:
        return np.zeros(0, dtype=np.intp)
    cut = np.partition(priority, len(priority) - size)[len(priority) - size]
    return np.flatnonzero(priority >= cut * (1.0 - 2.0 * near))
