"""Lapse detection: is this customer silent *relative to their own rhythm*? Pure; takes now.

From a customer's running stats (:class:`Profile`) and a few population-level numbers
(:class:`Population`), :func:`assess` works out:

- ``expected_gap_days``: their own typical gap (median of recent gaps), shrunk toward their
  segment's typical gap in proportion to how much history they have — a two-order customer
  is neither ignored nor judged on one interval;
- ``days_silent`` and ``lapse_ratio = days_silent / expected_gap``;
- ``lapse_score`` in [0, 1]: the probability that they place no order within the horizon
  (see ``reengage.lapse_model``: a rhythm prior, refined by a model fitted on this
  business's own history);
- decline ratios (frequency, order size, margin), the value at risk and a ``priority``;
- ``why``: the numbers in plain words for a rep.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from reengage.history import Summary
from reengage.i18n import days
from reengage.lapse_model import Inputs, LapseModel

DEFAULT_GAP_DAYS = 30.0
PRIOR_GAPS = 2.0  # the segment's gap counts like this many of the customer's own gaps
DECLINE_THRESHOLD = 0.7  # a ratio at or below this (30% or more down) is a decline signal
YEAR_DAYS = 365.25


@dataclass(frozen=True, slots=True)
class Profile:
    """What detection needs to know about one customer, from stats or from history as of a date."""

    customer_id: int
    external_id: str
    segment: str | None
    activity_count: int
    order_count: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    last_activity_at: datetime | None
    total_value: float
    total_margin: float
    typical_gap_days: float | None
    count_ratio: float | None
    aov_ratio: float | None
    margin_ratio: float | None
    name: str = ""  # "Ana Li (Ana's Bakery)", for people reading lists

    @classmethod
    def from_summary(
        cls,
        summary: Summary,
        customer_id: int,
        external_id: str,
        segment: str | None,
        name: str = "",
    ) -> Profile:
        """Derive a profile from a folded history."""
        declines = summary.declines()
        return cls(
            customer_id,
            external_id,
            segment,
            summary.activity_count,
            summary.order_count,
            summary.first_order_at,
            summary.last_order_at,
            summary.last_activity_at,
            summary.total_value,
            summary.total_margin,
            summary.typical_gap_days(),
            declines.count_ratio,
            declines.aov_ratio,
            declines.margin_ratio,
            name,
        )


@dataclass(frozen=True)
class Population:
    """Typical gaps of the customer base, the prior for customers with little history."""

    typical_gap_days: float = DEFAULT_GAP_DAYS
    segment_gap_days: dict[str, float] = field(default_factory=dict)

    def gap_for(self, segment: str | None) -> float:
        """The typical gap of ``segment``, or of everyone."""
        return self.segment_gap_days.get(segment or "", self.typical_gap_days)

    def pairs(self) -> list[tuple[str, float]]:
        """``("", everyone's gap)`` then ``(segment, gap)`` in order: how it is kept."""
        return [("", self.typical_gap_days), *sorted(self.segment_gap_days.items())]

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, float]]) -> Population:
        """The population :meth:`pairs` describes."""
        overall, *segments = list(pairs)
        return cls(overall[1], dict(segments))

    def shortest_gap(self) -> float:
        """The smallest prior gap of any segment (a safe floor for pre-filters)."""
        return min([self.typical_gap_days, *self.segment_gap_days.values()])


def fit_population(
    gaps: Iterable[tuple[str | None, float | None]], min_segment_size: int = 20
) -> Population:
    """Median typical gap overall and per segment (segments too small use the overall one).

    ``gaps`` are ``(segment, typical gap)`` pairs, one per customer (a sample will do).
    """
    overall: list[float] = []
    by_segment: dict[str, list[float]] = defaultdict(list)
    for segment, gap in gaps:
        if gap is None:
            continue
        overall.append(gap)
        if segment:
            by_segment[segment].append(gap)
    if not overall:
        return Population()
    return Population(
        typical_gap_days=statistics.median(overall),
        segment_gap_days={
            seg: statistics.median(gaps)
            for seg, gaps in by_segment.items()
            if len(gaps) >= min_segment_size
        },
    )


@dataclass(frozen=True, slots=True)
class Assessment:
    """Where a customer stands today, and why, in numbers and in words."""

    profile: Profile
    days_silent: float
    expected_gap_days: float
    lapse_ratio: float
    lapse_score: float
    value_per_year: float
    value_missing: float
    value_at_risk: float
    priority: float
    declining: bool
    why: str
    age_days: float = 0.0  # since their first order
    inputs: Inputs | None = None  # what the lapse score was computed from
    drivers: tuple[str, ...] = ()  # what of the history's shape raised the score, most first

    @property
    def customer_id(self) -> str:
        """The customer's external id, as imported."""
        return self.profile.external_id


def expected_gap(profile: Profile, population: Population) -> float:
    """Own typical gap shrunk toward the segment's, weighted by how many gaps we have seen.

    Done on the log scale, where gaps are roughly symmetric: with two orders (one gap) the
    segment still weighs double; with fifteen gaps the customer's own rhythm dominates.
    """
    return expected_gap_days(
        profile.typical_gap_days, profile.order_count, population.gap_for(profile.segment)
    )


def expected_gap_days(own: float | None, order_count: int, prior: float) -> float:
    """The numeric core of :func:`expected_gap`, for passes that skip building profiles."""
    if own is None:
        return prior
    n = min(max(order_count - 1, 1), 15)
    return math.exp((n * math.log(own) + PRIOR_GAPS * math.log(prior)) / (n + PRIOR_GAPS))


MIN_PRIOR_GAP = 0.5  # no population gap is below this (typical gaps are floored at 0.5)


def gap_floor(own: float | None, order_count: int) -> float | None:
    """The smallest :func:`expected_gap_days` can be for this customer, whatever the prior.

    The expected gap is a weighted geometric mean of their own gap and a prior that is
    never below :data:`MIN_PRIOR_GAP`, so it is at least that mean taken with the floor.
    """
    if own is None:
        return None
    return expected_gap_days(own, order_count, MIN_PRIOR_GAP)


def inputs_of(profile: Profile, population: Population, now: datetime) -> Inputs | None:
    """The numbers the lapse score needs, as of ``now``; None if they never did anything."""
    last = profile.last_order_at or profile.last_activity_at
    if last is None:
        return None
    first = profile.first_order_at or last
    orders = max(profile.order_count, 1)
    return Inputs(
        days_silent=max((now - last).total_seconds() / 86400.0, 0.0),
        expected_gap_days=expected_gap(profile, population),
        orders=profile.order_count,
        age_days=max((now - first).total_seconds() / 86400.0, 0.0),
        average_order_value=profile.total_value / orders,
        own_gap_days=profile.typical_gap_days,
        prior_gap_days=population.gap_for(profile.segment),
        count_ratio=profile.count_ratio,
        aov_ratio=profile.aov_ratio,
    )


def assess(
    profile: Profile, population: Population, now: datetime, model: LapseModel | None = None
) -> Assessment | None:
    """The customer's standing as of ``now``; None if they never did anything."""
    inputs = inputs_of(profile, population, now)
    if inputs is None:
        return None
    days_silent, gap = inputs.days_silent, inputs.expected_gap_days
    ratio = days_silent / gap
    score, drivers = (model or LapseModel()).explained(inputs)

    span = 0.0
    if profile.first_order_at and profile.last_order_at:
        span = (profile.last_order_at - profile.first_order_at).total_seconds() / 86400.0
    value_per_year = value_per_year_of(profile.total_value, profile.order_count, span, gap)
    value_per_day = value_per_year / YEAR_DAYS
    value_missing = value_per_day * max(days_silent - gap, 0.0)
    shrink = shrink_of(profile.margin_ratio, profile.aov_ratio, profile.count_ratio)
    declining = shrink >= 1.0 - DECLINE_THRESHOLD and ratio < 2.0
    # The longer someone has been gone, the harder the win-back: halve the weight per year.
    winnable = 0.5 ** (days_silent / YEAR_DAYS)
    value_at_risk = value_per_year * max(score, shrink)
    priority = value_at_risk * winnable
    return Assessment(
        profile,
        days_silent,
        gap,
        ratio,
        score,
        value_per_year,
        value_missing,
        value_at_risk,
        priority,
        declining,
        explain(profile, days_silent, gap, now, drivers, inputs),
        inputs.age_days,
        inputs,
        tuple(drivers),
    )


def shrink_of(*ratios: float | None) -> float:
    """How far orders, order size or margin shrank: 1 − the least of the decline ratios
    (0 when none fell, or none is known). Detection, the score dates and a rep's list take
    it into the value at risk."""
    return 1.0 - min([r for r in ratios if r is not None] + [1.0])


def value_per_year_of(total_value: float, order_count: int, span_days: float, gap: float) -> float:
    """What the customer was worth per year while their habit was alive.

    Repeat buyers: their spend over the active span plus one gap (at least 90 days, so a
    burst of early orders does not extrapolate wildly). A one-time buyer has shown no
    habit yet: they are worth what they spent, once.
    """
    if total_value <= 0:
        return 0.0
    if order_count < 2:
        return total_value
    return total_value * YEAR_DAYS / max(span_days + gap, 90.0)


def explain(
    profile: Profile,
    days_silent: float,
    gap: float,
    now: datetime,
    drivers: Sequence[str] = (),
    inputs: Inputs | None = None,
) -> str:
    """The numbers in plain words, the way a rep would say them.

    ``drivers`` (from :meth:`LapseModel.drivers`) are what of the history's shape raised
    the score; each is said once, after the numbers, unless a decline line says it already.
    """
    silent = days(days_silent)
    if profile.order_count == 0:
        parts = [f"Has never ordered; last seen {silent} ago."]
    elif profile.order_count == 1:
        parts = [
            f"Ordered once, {silent} ago; customers like them usually reorder within {days(gap)}."
        ]
    elif profile.order_count == 2 and profile.typical_gap_days is not None:
        parts = [
            f"Ordered twice, {days(profile.typical_gap_days)} apart; silent for {silent} "
            f"({days_silent / gap:.1f}× the {days(gap)} expected)."
        ]
    else:
        parts = [
            f"Usually orders every {days(gap)}; silent for {silent} "
            f"({days_silent / gap:.1f}× their rhythm)."
        ]
    if (
        profile.last_activity_at
        and profile.last_order_at
        and profile.last_activity_at > profile.last_order_at
    ):
        seen = (now - profile.last_activity_at).total_seconds() / 86400.0
        parts.append(f"Still around: last seen {days(seen)} ago.")
    if profile.count_ratio is not None and profile.count_ratio <= DECLINE_THRESHOLD:
        parts.append(f"Lately orders come {1 / profile.count_ratio:.1f}× less often than before.")
    if profile.aov_ratio is not None and profile.aov_ratio <= DECLINE_THRESHOLD:
        parts.append(
            f"Their last 3 orders were {100 * (1 - profile.aov_ratio):.0f}% smaller than "
            "the ones before."
        )
    if profile.margin_ratio is not None and profile.margin_ratio <= DECLINE_THRESHOLD:
        parts.append(f"Margin contributed is down {100 * (1 - profile.margin_ratio):.0f}%.")
    for found in driver_lines(profile, drivers, inputs):
        parts.append(found.line.format(**{k: days(v) for k, v in found.days}))
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class DriverLine:
    """A driver of the score (:data:`reengage.lapse_features.DRIVERS`) as a rep hears it:
    the sentence and its few words, in English (the message ids the digest translates),
    with ``{own}`` and ``{peers}`` standing for the day counts in ``days``."""

    driver: str
    line: str
    short: str
    days: tuple[tuple[str, float], ...] = ()


def driver_lines(
    profile: Profile, drivers: Sequence[str], inputs: Inputs | None
) -> list[DriverLine]:
    """What of the history's shape raised the score (``drivers``, most first), a line each,
    leaving out what a decline line says already (orders 30% further apart or smaller)."""
    said = []
    for driver in drivers:
        if driver == "gap_trend" and profile.count_ratio is not None:
            if profile.count_ratio <= DECLINE_THRESHOLD:
                continue
            if profile.count_ratio < 1:
                line = "Their last orders came further apart than their usual rhythm."
                said.append(DriverLine(driver, line, "visits spacing out"))
            else:
                line = "Their last orders came closer together than their usual rhythm."
                said.append(DriverLine(driver, line, "visits closer together"))
        elif driver == "value_trend" and profile.aov_ratio is not None:
            if profile.aov_ratio <= DECLINE_THRESHOLD:
                continue
            if profile.aov_ratio < 1:
                line = "Their last orders were smaller than the ones before."
                said.append(DriverLine(driver, line, "baskets shrinking"))
            else:
                line = "Their last orders were larger than the ones before."
                said.append(DriverLine(driver, line, "baskets growing"))
        elif driver == "own_vs_peers" and inputs and inputs.own_gap_days and inputs.prior_gap_days:
            gaps = (("own", inputs.own_gap_days), ("peers", inputs.prior_gap_days))
            if inputs.own_gap_days > inputs.prior_gap_days:
                line = (
                    "They order less often than customers like them (every {own}; "
                    "customers like them every {peers})."
                )
                said.append(DriverLine(driver, line, "slower than their peers", gaps))
            else:
                line = (
                    "They order more often than customers like them (every {own}; "
                    "customers like them every {peers})."
                )
                said.append(DriverLine(driver, line, "faster than their peers", gaps))
        elif driver == "spread" and inputs and inputs.own_gap_days and inputs.orders > 1:
            mean = (inputs.age_days - inputs.days_silent) / (inputs.orders - 1)
            if mean > inputs.own_gap_days:
                line = "Their orders come irregularly, with long breaks between bursts."
                said.append(DriverLine(driver, line, "irregular for them"))
            else:
                line = "They have ordered like clockwork, so a silence stands out."
                said.append(DriverLine(driver, line, "silent after ordering like clockwork"))
    return said
