"""How the lapse score would have done on this business's own history (``score --backtest``),
and how two models compare on a window neither saw (the daemon's refit).

A backtest scores the history as it stood on a date with a model fitted on what was known
by then, and checks who ordered again within the horizon after it. It reports the chosen
horizon (or the operator's) in full, and beside it half and double that horizon, so an
operator sees how the question's length changes the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from reengage.backtest import CalibrationRow, MethodResult, calibration, evaluate
from reengage.detect import Profile, fit_population, inputs_of
from reengage.horizon import MAX_HORIZON_DAYS, HorizonChoice, HorizonSource, named_horizon
from reengage.lapse_model import DEFAULT_HORIZON_DAYS, Inputs, LapseModel
from reengage.scoring import FitResult, fit_model, horizon_of
from reengage.store import Store

COMPARED = (0.5, 1.0, 2.0)  # the horizons set side by side, as multiples of the chosen one
SETTLE_TRIES = 3  # rhythm horizons read looking for the latest date that can be checked


@dataclass(frozen=True)
class HorizonResult:
    """How the score ranked at one horizon; ``lapse`` None when its window has not ended."""

    days: float
    chosen: bool
    ends: datetime
    customers: int
    did_not_return: int
    lapse: MethodResult | None
    recency: MethodResult | None
    fitted: bool  # False: too little history before it, the rhythm prior was scored


@dataclass(frozen=True)
class BacktestReport:
    """How the score would have done on this business's own history."""

    as_of: datetime
    horizon: timedelta
    choice: HorizonChoice
    customers: int
    did_not_return: int
    methods: list[MethodResult]
    calibration: list[CalibrationRow]
    horizons: list[HorizonResult]


@dataclass(frozen=True)
class Window:
    """Customers as they stood at ``as_of`` (the score's inputs then) and whether each did
    not order again by ``as_of + horizon``: what models are judged on."""

    as_of: datetime
    horizon_days: float
    customer_ids: list[int]
    inputs: list[Inputs]
    gone: list[bool]

    @classmethod
    def read(cls, store: Store, as_of: datetime, horizon_days: float) -> Window:
        """The window from the history (later activity ignored for the inputs)."""
        return cls.of(store, as_of, horizon_days, list(store.detection.profiles_as_of(as_of)))

    @classmethod
    def of(
        cls, store: Store, as_of: datetime, horizon_days: float, profiles: list[Profile]
    ) -> Window:
        """The window over profiles already rebuilt as of ``as_of``."""
        population = fit_population((p.segment, p.typical_gap_days) for p in profiles)
        ids: list[int] = []
        inputs: list[Inputs] = []
        for p in profiles:
            found = inputs_of(p, population, as_of)
            if found is not None:
                ids.append(p.customer_id)
                inputs.append(found)
        return cls(as_of, horizon_days, ids, inputs, []).within(store, horizon_days)

    def within(self, store: Store, horizon_days: float) -> Window:
        """The same customers, labelled by who ordered again within ``horizon_days``."""
        returned = store.detection.buyers_between(
            self.as_of, self.as_of + timedelta(days=horizon_days)
        )
        gone = [cid not in returned for cid in self.customer_ids]
        return Window(self.as_of, horizon_days, self.customer_ids, self.inputs, gone)

    def judge(self, name: str, model: LapseModel) -> MethodResult:
        """ROC AUC and top-5%/10% precision of ``model``'s scores against who came back."""
        return evaluate(name, [model.score(i) for i in self.inputs], self.gone)

    def recency(self) -> MethodResult:
        """Plain recency (days silent) on the same customers."""
        silent = [i.days_silent for i in self.inputs]
        return evaluate("plain recency (days silent)", silent, self.gone)

    def ratio(self) -> MethodResult:
        """The lapse ratio (days silent over the expected gap) on the same customers."""
        ratios = [i.days_silent / i.expected_gap_days for i in self.inputs]
        return evaluate("lapse_ratio alone", ratios, self.gone)


def backtest(
    store: Store,
    *,
    as_of: datetime,
    horizon: timedelta | HorizonChoice | None = None,
    now: datetime | None = None,
    profiles: list[Profile] | None = None,
    compared: Sequence[float] = COMPARED,
) -> tuple[BacktestReport, FitResult]:
    """Score the history as of ``as_of``; compare with who ordered again within the horizon.

    The horizon is ``horizon`` when the operator named one (or it was chosen already), else
    chosen from the customers' rhythm as of ``as_of`` (nothing later is read). ``profiles``:
    the history as of ``as_of``, when already rebuilt. The model is fitted on what was known by
    ``as_of`` only (see :func:`reengage.scoring.fit_model`), so the test is honest. The
    horizons ``compared`` (multiples of it: half and double by default) are reported beside
    it, each with a model fitted for it; one whose window ends after ``now`` is listed as
    not over yet.
    """
    if profiles is None:
        profiles = list(store.detection.profiles_as_of(as_of))
    if horizon is None:
        choice = horizon_of(profiles)
    elif isinstance(horizon, HorizonChoice):
        choice = horizon
    else:
        choice = named_horizon(horizon.total_seconds() / 86400.0)
    fit = fit_model(store, as_of, choice)
    window = Window.of(store, as_of, choice.days, profiles)
    scores = [fit.model.score(i) for i in window.inputs]
    methods = [
        evaluate("lapse_score (reengage)", scores, window.gone),
        window.judge("rhythm prior alone", LapseModel(choice.days)),
        window.recency(),
        window.ratio(),
    ]
    report = BacktestReport(
        as_of,
        timedelta(days=choice.days),
        choice,
        len(window.gone),
        sum(window.gone),
        methods,
        calibration(scores, window.gone),
        _side_by_side(store, window, fit, now, compared),
    )
    return report, fit


def compared_horizons(days: float, compared: Sequence[float] = COMPARED) -> list[float]:
    """The horizons set side by side with ``days`` (itself always), in whole days: a
    multiple shorter than a day, or the same whole days as another, is left out (see
    :func:`left_out`)."""
    return sorted({float(round(days * k)) for k in compared if round(days * k) >= 1} | {days})


def left_out(days: float, compared: Sequence[float] = COMPARED) -> list[float]:
    """The multiples of ``days`` in ``compared`` that get no row of their own: shorter
    than a whole day (half of 1 day), or the same whole days as a shorter multiple's row."""
    seen: set[float] = {days}
    missing = []
    for k in sorted(compared):
        whole = float(round(days * k))
        if k != 1.0 and (whole < 1 or whole in seen):
            missing.append(k)
        seen.add(whole)
    return missing


def latest_as_of(
    store: Store, now: datetime, guess: HorizonChoice, *, fixed: bool = False
) -> tuple[datetime, HorizonChoice]:
    """The latest day (midnight UTC, as ``--as-of`` reads one) that a backtest can check
    by ``now``, and its horizon: the one a backtest as of that day will use.

    ``guess`` is the horizon of some other day. A named one (or a ``fixed`` one: the model
    in force's) is the same for every day. A
    rhythm horizon is chosen as of the day itself, so moving the day moves it: each day
    tried is read again until its own horizon has ended by ``now``; after
    :data:`SETTLE_TRIES`, the day one longest horizon back, whose own horizon has ended
    whatever the rhythm then.
    """
    for _ in range(SETTLE_TRIES):
        day = _midnight(now - timedelta(days=guess.days))
        if fixed or guess.source is HorizonSource.OPERATOR:
            return day, guess
        choice = horizon_of(store.detection.profiles_as_of(day))
        if day + timedelta(days=choice.days) <= now:
            return day, choice
        guess = choice
    day = _midnight(now - timedelta(days=max(MAX_HORIZON_DAYS, DEFAULT_HORIZON_DAYS)))
    return day, horizon_of(store.detection.profiles_as_of(day))


def _midnight(moment: datetime) -> datetime:
    return datetime.combine(moment.date(), time(), moment.tzinfo)


def _side_by_side(
    store: Store, chosen: Window, fit: FitResult, now: datetime | None, compared: Sequence[float]
) -> list[HorizonResult]:
    rows = []
    for days in compared_horizons(chosen.horizon_days, compared):
        ends = chosen.as_of + timedelta(days=days)
        is_chosen = days == chosen.horizon_days
        if now is not None and ends > now:
            rows.append(HorizonResult(days, is_chosen, ends, 0, 0, None, None, False))
            continue
        if is_chosen:
            window, here = chosen, fit
        else:
            window = chosen.within(store, days)
            here = fit_model(store, chosen.as_of, named_horizon(days))
        rows.append(
            HorizonResult(
                days,
                is_chosen,
                ends,
                len(window.gone),
                sum(window.gone),
                window.judge("lapse_score (reengage)", here.model),
                window.recency(),
                here.kept_prior_because is None,
            )
        )
    return rows
