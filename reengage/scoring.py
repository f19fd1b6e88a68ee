"""Use cases around detection: score every customer, fit the score, list the lapsed.

The horizon the score answers for is the model in force's; before any model is fitted, and
whenever a fit is asked for without one, it is chosen from the customers' rhythm
(:mod:`reengage.horizon`). Before a fit, the daemon chooses it with the population it refits
once a day and keeps both (:mod:`reengage.enroll`): every pass, mail and ``score`` in
between answers for that one horizon, however the sample it was read from moves as
customers arrive. The backtest is in :mod:`reengage.backtesting`."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from reengage.backtest import roc_auc
from reengage.detect import (
    Assessment,
    Population,
    Profile,
    assess,
    expected_gap_days,
    fit_population,
    inputs_of,
)
from reengage.horizon import (
    MIN_REGULAR_BUYERS,
    REGULAR_ORDERS,
    HorizonChoice,
    choose_horizon,
    named_horizon,
)
from reengage.lapse_features import fit_weights
from reengage.lapse_model import (
    Inputs,
    LapseModel,
    features,
    probability,
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


MIN_FIT_CUSTOMERS = 200  # fewer than this, or too few of either outcome: keep the prior
MIN_FIT_OUTCOMES = 20
FIT_SAMPLE = 200_000  # customers used to fit; plenty for seventeen coefficients


def current_model(store: Store) -> LapseModel:
    """The model in force (the newest fitted), or the rhythm prior at the horizon chosen
    from the customers' rhythm when none has been fitted yet."""
    return store.detection.latest_lapse_model() or LapseModel(rhythm_horizon(store).days)


def rhythm_horizon(store: Store) -> HorizonChoice:
    """The horizon the customers' rhythm calls for, as the daemon keeps it with the
    population (:func:`reengage.enroll.detect_and_enroll`); before its first pass, read
    now from a sample of the running stats."""
    return store.detection.kept_horizon() or sampled_horizon(store)


def sampled_horizon(store: Store) -> HorizonChoice:
    """The horizon today's customers' rhythm calls for, read now from a sample of the
    running stats (the regular buyers counted over the whole base): what the daemon keeps
    with each refit of the population."""
    regular = store.detection.regular_buyers()
    sample = store.detection.rhythm_sample()
    found = sum(orders >= REGULAR_ORDERS and gap > 0 for orders, gap in sample)
    if found < MIN_REGULAR_BUYERS <= regular:  # too rare for an even spread to find
        sample = store.detection.regular_sample()
    return choose_horizon(sample, regular)


def horizon_of(profiles: Iterable[Profile]) -> HorizonChoice:
    """The horizon the rhythm of these customers (as of some moment) calls for."""
    return choose_horizon((p.order_count, p.typical_gap_days) for p in profiles)


def horizon_in_force(store: Store) -> tuple[LapseModel, HorizonChoice | None]:
    """The model in force and why its horizon is the one (None: fitted before the reason
    was recorded)."""
    found = store.lapse_models.in_force()
    if found is not None:
        return found.model, found.horizon
    choice = rhythm_horizon(store)
    return LapseModel(choice.days), choice


@dataclass(frozen=True)
class FitResult:
    """A fitted model (or why the prior was kept) and how it ranks on its own data."""

    model: LapseModel
    customers: int
    did_not_return: int
    horizon: HorizonChoice
    auc: float | None = None
    auc_recency: float | None = None
    kept_prior_because: str | None = None


def fit_model(
    store: Store, as_of: datetime, horizon: HorizonChoice | float | None = None
) -> FitResult:
    """Learn the lapse score from this business's history, using nothing after ``as_of``.

    Customers are scored as they stood at ``as_of - horizon`` and labelled by whether they
    ordered again by ``as_of``; a logistic regression over :data:`lapse_model.FEATURES` is
    fitted to that. Too little history keeps the rhythm prior, and says why. A horizon in
    days is the operator's; None chooses it from the customers' rhythm as of ``as_of``.
    """
    if horizon is None:
        horizon = horizon_of(store.detection.profiles_as_of(as_of))
    elif not isinstance(horizon, HorizonChoice):
        horizon = named_horizon(horizon)
    horizon_days = horizon.days
    start = as_of - timedelta(days=horizon_days)
    profiles = list(store.detection.profiles_as_of(start))
    population = fit_population((p.segment, p.typical_gap_days) for p in profiles)
    returned = store.detection.buyers_between(start, as_of)
    rows: list[list[float]] = []
    labels: list[bool] = []
    recency: list[float] = []
    for profile in profiles:
        inputs = inputs_of(profile, population, start)
        if inputs is None:
            continue
        rows.append(features(inputs, horizon_days))
        labels.append(profile.customer_id not in returned)
        recency.append(inputs.days_silent)
    gone = sum(labels)
    prior = LapseModel(horizon_days)
    if len(rows) < MIN_FIT_CUSTOMERS or min(gone, len(rows) - gone) < MIN_FIT_OUTCOMES:
        return FitResult(
            prior,
            len(rows),
            gone,
            horizon,
            kept_prior_because=(
                f"{len(rows)} customers with history before {start:%Y-%m-%d}, {gone} of "
                f"whom did not order by {as_of:%Y-%m-%d}: at least {MIN_FIT_CUSTOMERS} and "
                f"{MIN_FIT_OUTCOMES} of each outcome are needed"
            ),
        )
    step = max(1, len(rows) // FIT_SAMPLE)  # an even spread, the same on every run
    weights = fit_weights(rows[::step], labels[::step])
    model = LapseModel(horizon_days, weights, as_of, len(rows))
    scores = [probability(weights, row) for row in rows]
    return FitResult(
        model, len(rows), gone, horizon, roc_auc(scores, labels), roc_auc(recency, labels)
    )


def assess_all(
    store: Store,
    now: datetime,
    *,
    as_of: datetime | None = None,
    model: LapseModel | None = None,
    profiles: list[Profile] | None = None,
) -> tuple[Population, list[Assessment]]:
    """Assess every customer with activity.

    Today: from the running stats with the newest fitted model. ``as_of`` a past date: from
    the history as it stood then (``profiles``, when already rebuilt), with a model fitted
    on what was known by then.
    """
    if as_of is None:
        profiles = list(store.detection.profiles())
        population, fitted = prior_for(store)
        model = model or fitted
    else:
        if profiles is None:
            profiles = list(store.detection.profiles_as_of(as_of))
        model = model or fit_model(store, as_of, horizon_of(profiles)).model
        population = fit_population((p.segment, p.typical_gap_days) for p in profiles)
    when = as_of or now
    return population, [
        a for p in profiles if (a := assess(p, population, when, model)) is not None
    ]


def assess_customers(
    store: Store,
    now: datetime,
    *,
    customer_ids: Sequence[int] | None = None,
    rep_external_ids: Sequence[str] | None = None,
    prior: tuple[Population, LapseModel] | None = None,
    profiles: Iterable[Profile] | None = None,
) -> dict[int, Assessment]:
    """Where some customers stand at ``now``, by customer id, without assessing everyone.

    The population prior is fitted on a sample of the whole base (as detection does), so a
    customer's rhythm reads the same in a mail, its preview, a rep's list and the outcome
    form. Pass ``prior`` (from :func:`prior_for`) to reuse one across many calls, and
    ``profiles`` to assess profiles already read (then the ids are not used).
    """
    population, model = prior or prior_for(store)
    if profiles is None:
        profiles = store.detection.profiles(
            customer_ids=customer_ids, rep_external_ids=rep_external_ids
        )
    return {
        p.customer_id: a for p in profiles if (a := assess(p, population, now, model)) is not None
    }


def prior_for(store: Store) -> tuple[Population, LapseModel]:
    """The population's typical gaps and the newest fitted lapse model: what the detection
    pass decides with (its population is refitted once a day), so a customer's rhythm reads
    the same in detection, a mail, its preview, a rep's list and the outcome form."""
    state = store.detection.pass_state()
    if state is not None:
        return Population.from_pairs(state.population), current_model(store)
    return sampled_population(store), current_model(store)


def sampled_population(store: Store) -> Population:
    """The population's typical gaps, fitted now on a sample spread over the whole base."""
    return fit_population(store.detection.gap_sample())


@dataclass(frozen=True)
class LapseCriteria:
    """A campaign audience's lapse rule: silent ``factor`` × their rhythm, within a range."""

    factor: float = 2.0
    min_days_silent: float = 21.0
    max_days_silent: float = 365.0
    min_score: float = 0.0


class Candidate(NamedTuple):
    """A customer who meets a lapse rule (a tuple: a pass may find hundreds of thousands)."""

    customer_id: int
    days_silent: float
    lapse_ratio: float
    lapse_score: float | None  # computed only when the rule has a min_score


def lapsed_audience(
    store: Store,
    now: datetime,
    criteria: LapseCriteria,
    population: Population | None = None,
    model: LapseModel | None = None,
) -> list[Candidate]:
    """Everyone who meets ``criteria`` today: one indexed query plus arithmetic per match.

    The detection pass of the daemon; it reads the stats, never the activity table.
    """
    population = population or fit_population(store.detection.gap_sample())
    model = model or current_model(store)
    matched = []
    for (
        customer_id,
        segment,
        orders,
        own_gap,
        silent,
        age,
        value,
    ) in store.detection.lapse_candidates(
        now,
        min_days=criteria.min_days_silent,
        max_days=criteria.max_days_silent,
        factor=criteria.factor,
        min_gap=population.shortest_gap(),
    ):
        prior = population.gap_for(segment)
        gap = prior if own_gap is None else expected_gap_days(own_gap, orders, prior)
        if silent < criteria.factor * gap:
            continue
        inputs = Inputs(silent, gap, orders, age, value / max(orders, 1), own_gap, prior)
        matched.append((customer_id, inputs))
    if criteria.min_score <= 0:
        return [
            Candidate(c, i.days_silent, i.days_silent / i.expected_gap_days, None)
            for c, i in matched
        ]
    # The score also reads the trends, which the covering index leaves out: fetched by
    # primary key for the few who met the rule so far.
    trends = store.detection.trends([c for c, _ in matched])
    found = []
    for customer_id, inputs in matched:
        count_ratio, aov_ratio = trends.get(customer_id, (None, None))
        score = model.score(replace(inputs, count_ratio=count_ratio, aov_ratio=aov_ratio))
        if score >= criteria.min_score:
            silent = inputs.days_silent
            found.append(Candidate(customer_id, silent, silent / inputs.expected_gap_days, score))
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
