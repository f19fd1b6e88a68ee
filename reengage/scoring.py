"""Use cases around detection: score every customer, list the lapsed, backtest the score."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from reengage.backtest import CalibrationRow, MethodResult, calibration, evaluate
from reengage.detect import (
    Assessment,
    Population,
    assess,
    expected_gap_days,
    fit_population,
    lapse_score,
)
from reengage.store import Store

CSV_COLUMNS = [
    "customer_id",
    "segment",
    "orders",
    "days_silent",
    "expected_gap_days",
    "lapse_ratio",
    "lapse_score",
    "count_ratio",
    "aov_ratio",
    "margin_ratio",
    "value_per_year",
    "value_missing",
    "value_at_risk",
    "priority",
    "declining",
    "why",
]


def assess_all(
    store: Store, now: datetime, *, as_of: datetime | None = None
) -> tuple[Population, list[Assessment]]:
    """Assess every customer with activity, from the stats (or the history as of a date)."""
    profiles = list(store.profiles_as_of(as_of) if as_of else store.profiles())
    population = fit_population((p.segment, p.typical_gap_days) for p in profiles)
    when = as_of or now
    return population, [a for p in profiles if (a := assess(p, population, when)) is not None]


@dataclass(frozen=True)
class LapseCriteria:
    """A campaign audience's lapse rule: silent ``factor`` × their rhythm, within a range."""

    factor: float = 2.0
    min_days_silent: float = 21.0
    max_days_silent: float = 365.0
    min_score: float = 0.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """A customer who meets a lapse rule."""

    customer_id: int
    days_silent: float
    lapse_ratio: float
    lapse_score: float


def lapsed_audience(
    store: Store, now: datetime, criteria: LapseCriteria, population: Population | None = None
) -> list[Candidate]:
    """Everyone who meets ``criteria`` today: one indexed query plus arithmetic per match.

    The detection pass of the daemon; it reads the stats, never the activity table.
    """
    population = population or fit_population(store.gap_sample())
    found = []
    for customer_id, segment, orders, own_gap, silent in store.lapse_candidates(
        now,
        min_days=criteria.min_days_silent,
        max_days=criteria.max_days_silent,
        factor=criteria.factor,
        min_gap=population.shortest_gap(),
    ):
        gap = expected_gap_days(own_gap, orders, population.gap_for(segment))
        if silent < criteria.factor * gap:
            continue
        score = lapse_score(silent, gap, orders)
        if score >= criteria.min_score:
            found.append(Candidate(customer_id, silent, silent / gap, score))
    return found


def lapsed(
    store: Store, now: datetime, *, min_score: float = 0.5, by: str = "score"
) -> list[Assessment]:
    """Customers whose habit has probably lapsed (or whose business is shrinking), worst first."""
    _, assessments = assess_all(store, now)
    chosen = [a for a in assessments if a.lapse_score >= min_score or a.declining]
    key = (
        (lambda a: (a.priority, a.lapse_score))
        if by == "priority"
        else (lambda a: (a.lapse_score, a.priority))
    )
    return sorted(chosen, key=key, reverse=True)


def write_csv(assessments: Iterable[Assessment], path: Path) -> int:
    """One row per customer with every measure and the plain-words reason."""
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for a in assessments:
            p = a.profile
            writer.writerow(
                [
                    p.external_id,
                    p.segment or "",
                    p.order_count,
                    f"{a.days_silent:.1f}",
                    f"{a.expected_gap_days:.1f}",
                    f"{a.lapse_ratio:.3f}",
                    f"{a.lapse_score:.4f}",
                    _ratio(p.count_ratio),
                    _ratio(p.aov_ratio),
                    _ratio(p.margin_ratio),
                    f"{a.value_per_year:.2f}",
                    f"{a.value_missing:.2f}",
                    f"{a.value_at_risk:.2f}",
                    f"{a.priority:.2f}",
                    "yes" if a.declining else "no",
                    a.why,
                ]
            )
            count += 1
    return count


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


@dataclass(frozen=True)
class BacktestReport:
    """How the score would have done on this business's own history."""

    as_of: datetime
    horizon: timedelta
    customers: int
    did_not_return: int
    methods: list[MethodResult]
    calibration: list[CalibrationRow]


def backtest(store: Store, *, as_of: datetime, horizon: timedelta) -> BacktestReport:
    """Score the history as of ``as_of``; compare with who bought again within ``horizon``.

    A customer "did not come back" when they placed no order in (as_of, as_of + horizon].
    The lapse score is set beside plain recency (days silent) and the lapse ratio alone.
    """
    _, assessments = assess_all(store, as_of, as_of=as_of)
    returned = store.buyers_between(as_of, as_of + horizon)
    labels = [a.profile.customer_id not in returned for a in assessments]
    score = [a.lapse_score for a in assessments]
    methods = [
        evaluate("lapse_score (reengage)", score, labels),
        evaluate("plain recency (days silent)", [a.days_silent for a in assessments], labels),
        evaluate("lapse_ratio alone", [a.lapse_ratio for a in assessments], labels),
    ]
    return BacktestReport(
        as_of, horizon, len(assessments), sum(labels), methods, calibration(score, labels)
    )
