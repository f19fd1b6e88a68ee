"""`reengage score`: every customer's lapse score, the fit of the score on this business's
history, and its backtest, with the horizon in force and why (see :mod:`reengage.horizon`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from reengage.cli.app import _store, app, out, parse_day
from reengage.timeutil import parse_duration, utcnow

if TYPE_CHECKING:
    from reengage import backtesting, scoring
    from reengage.horizon import HorizonChoice
    from reengage.store import Store


@app.command()
def score(
    as_of: Annotated[
        str | None,
        typer.Option(help="Judge the history as it stood on this date (later activity ignored)."),
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write one row per customer to this CSV file.")
    ] = None,
    run_backtest: Annotated[
        bool,
        typer.Option("--backtest", help="Check the score against what happened after --as-of."),
    ] = False,
    horizon: Annotated[
        str | None,
        typer.Option(
            help="How long a customer has to come back, e.g. 90d (with --fit, --as-of or "
            "--backtest); default: chosen from your customers' rhythm."
        ),
    ] = None,
    fit: Annotated[
        bool,
        typer.Option(
            "--fit", help="Learn the score from this business's history and keep it for detection."
        ),
    ] = False,
) -> None:
    """Score every customer: days silent, expected gap, lapse ratio and score, declines, value.

    The lapse score is the probability of no order within the horizon: three typical gaps
    of your regular buyers unless you name one. It is learned from your own history
    (--fit; --as-of and --backtest learn from what was known by that date).
    """
    from reengage import scoring
    from reengage.horizon import operator_horizon

    now = utcnow()  # the edge reads the clock once; everything below takes that moment
    when = parse_day(as_of) if as_of else None
    named: HorizonChoice | None = None
    if horizon is not None:
        try:
            named = operator_horizon(parse_duration(horizon).total_seconds() / 86400)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--horizon") from None
    store = _store()
    try:
        if run_backtest and when is None:
            raise typer.BadParameter(
                "--backtest needs --as-of, a date at least one horizon in the past",
                param_hint="--as-of",
            )
        if when is not None and not run_backtest:
            _history_by(store, when)
        if run_backtest and when is not None:
            _backtest(store, when, named, now)
            return
        if fit:
            if named is None:  # today's rhythm, or the rhythm as it stood on --as-of
                chosen = scoring.rhythm_horizon(store) if when is None else None
            else:
                chosen = named
            fitted = scoring.fit_model(store, when or now, chosen)
            _print_fit(fitted)
            if fitted.kept_prior_because is None:
                store.lapse_models.save(
                    fitted.model,
                    horizon=fitted.horizon,
                    auc=fitted.auc,
                    auc_recency=fitted.auc_recency,
                    now=now,
                )
                out.print("saved: detection and `reengage score` now use this model")
            return
        if when is None:
            model, choice = scoring.horizon_in_force(store)
            if named is not None:
                raise typer.BadParameter(
                    f"today's scores are the model in force's (horizon "
                    f"{_days(model.horizon_days)}); to score at {horizon}, fit a model for "
                    f"it: reengage score --fit "
                    f"--horizon {horizon} (or look back: --as-of DATE --horizon {horizon})",
                    param_hint="--horizon",
                )
            population, assessments = scoring.assess_all(store, now, model=model)
        else:
            profiles = list(store.detection.profiles_as_of(when))
            choice = named or scoring.horizon_of(profiles)
            model = scoring.fit_model(store, when, choice).model
            population, assessments = scoring.assess_all(
                store, now, as_of=when, model=model, profiles=profiles
            )
    finally:
        store.close()
    if out_file is not None:
        count = scoring.write_csv(assessments, out_file)
        out.print(f"wrote {count} customers to {out_file}")
        out.print(_horizon_line(model.horizon_days, choice), highlight=False, markup=False)
        return
    lapsed_count = sum(a.lapse_score >= 0.5 for a in assessments)
    declining = sum(a.declining for a in assessments)
    out.print(
        f"{len(assessments)} customers scored as of {(when or now):%Y-%m-%d}: "
        f"{lapsed_count} have probably lapsed (score ≥ 0.5), {declining} are shrinking; "
        f"typical gap {_days(population.typical_gap_days)}. Use --out FILE.csv for all rows."
    )
    out.print(_horizon_line(model.horizon_days, choice), highlight=False, markup=False)


def _horizon_line(days: float, choice: HorizonChoice | None) -> str:
    """The horizon in force and why, as `score` and `--backtest` print it."""
    why = choice.why() if choice is not None else "as it was fitted (reason not recorded)"
    return f"Lapse score = P(no order within {_days(days)}): {why}."


def _history_by(store: Store, when: datetime, first: datetime | None = None) -> None:
    """Refuse an --as-of date before the history begins (``first``, read when not given):
    nobody would be judged, and empty tables look like an answer."""
    first = first or store.customers.overview().first_activity_at
    if first is None:
        raise typer.BadParameter(
            "there is no activity to judge yet: import your history first "
            "(reengage import activities FILE)",
            param_hint="--as-of",
        )
    if when <= first:
        raise typer.BadParameter(
            f"{when:%Y-%m-%d} is before your history begins (first activity "
            f"{first:%Y-%m-%d}), so nobody has a history to judge as of it: choose a date "
            f"after {first:%Y-%m-%d}",
            param_hint="--as-of",
        )


def _backtest(store: Store, when: datetime, named: HorizonChoice | None, now: datetime) -> None:
    from reengage import backtesting, scoring

    profiles = list(store.detection.profiles_as_of(when))
    choice = named or scoring.horizon_of(profiles)
    end = when + timedelta(days=choice.days)
    first = store.customers.overview().first_activity_at
    if end > now:
        which = (
            f"the horizon ({_days(choice.days)})"
            if named is not None
            else f"the horizon chosen from your customers' rhythm ({_days(choice.days)})"
        )
        latest, then = backtesting.latest_as_of(store, now, choice)
        if first is not None and latest <= first:
            raise typer.BadParameter(
                f"{when:%Y-%m-%d} plus {which} ends on {end:%Y-%m-%d}, which has not come "
                f"yet, and your history (from {first:%Y-%m-%d}) is too short for any date's "
                "horizon to have ended: name a shorter --horizon",
                param_hint="--as-of",
            )
        its = (
            ""
            if named is not None or then.days == choice.days
            else f" (its own horizon, from the rhythm as it stood then, is {_days(then.days)})"
        )
        raise typer.BadParameter(
            f"{when:%Y-%m-%d} plus {which} ends on {end:%Y-%m-%d}, which has not come yet, so "
            f"nobody's return can be checked: the latest date that can be checked is "
            f"{latest:%Y-%m-%d}{its} (or name a shorter --horizon)",
            param_hint="--as-of",
        )
    _history_by(store, when, first)
    report, fitted = backtesting.backtest(
        store, as_of=when, horizon=choice, now=now, profiles=profiles
    )
    out.print(_horizon_line(choice.days, choice), highlight=False, markup=False)
    _print_fit(fitted, horizon=False)
    _print_backtest(report)


def _print_fit(fitted: scoring.FitResult, *, horizon: bool = True) -> None:
    if horizon:
        out.print(
            _horizon_line(fitted.model.horizon_days, fitted.horizon), highlight=False, markup=False
        )
    if fitted.kept_prior_because is not None:
        out.print(f"lapse model: kept the rhythm prior — {fitted.kept_prior_because}")
        return
    out.print(
        f"lapse model: {fitted.model.describe()}; {fitted.did_not_return} of "
        f"{fitted.customers} did not come back within the horizon. Ranking on that history: "
        f"ROC AUC {_fmt(fitted.auc, '{:.3f}')} (plain recency "
        f"{_fmt(fitted.auc_recency, '{:.3f}')})."
    )


def _print_backtest(report: backtesting.BacktestReport) -> None:
    from reengage import backtesting
    from reengage.horizon import HorizonSource

    end = report.as_of + report.horizon
    out.print(
        f"Scored {report.customers} customers as of {report.as_of:%Y-%m-%d}; "
        f"{report.did_not_return} ({report.did_not_return / max(report.customers, 1):.0%}) "
        f"placed no order by {end:%Y-%m-%d}."
    )
    table = Table(title="How well each ranking finds the customers who did not come back")
    for column in ("ranking", "ROC AUC", "precision, top 5%", "precision, top 10%"):
        table.add_column(column, justify="left" if column == "ranking" else "right")
    for m in report.methods:
        table.add_row(
            m.name,
            _fmt(m.auc, "{:.3f}"),
            _fmt(m.precision_top5, "{:.0%}"),
            _fmt(m.precision_top10, "{:.0%}"),
        )
    out.print(table)
    calib = Table(title="Calibration of lapse_score: predicted against observed")
    for column in ("score band", "customers", "predicted", "did not come back"):
        calib.add_column(column, justify="right")
    for row in report.calibration:
        calib.add_row(
            f"{row.low:.1f}–{row.high:.1f}",
            str(row.count),
            f"{row.predicted:.0%}",
            f"{row.observed:.0%}",
        )
    out.print(calib)
    mark = "◀ named" if report.choice.source is HorizonSource.OPERATOR else "◀ chosen"
    sides = Table(title="The lapse score at several horizons (each fitted for its own horizon)")
    for column in (
        "horizon",
        "",
        "did not come back",
        "ROC AUC",
        "precision, top 10%",
        "recency's ROC AUC",
    ):
        sides.add_column(column, justify="left" if column in ("horizon", "") else "right")
    for h in report.horizons:
        if h.lapse is None or h.recency is None:
            sides.add_row(
                _days(h.days),
                mark if h.chosen else "",
                f"not over until {h.ends:%Y-%m-%d}",
                "—",
                "—",
                "—",
            )
            continue
        sides.add_row(
            _days(h.days),
            (mark if h.chosen else "") + ("" if h.fitted else " (rhythm prior)"),
            f"{h.did_not_return} of {h.customers}",
            _fmt(h.lapse.auc, "{:.3f}"),
            _fmt(h.lapse.precision_top10, "{:.0%}"),
            _fmt(h.recency.auc, "{:.3f}"),
        )
    out.print(sides)
    for multiple in backtesting.left_out(report.choice.days):
        out.print(_left_out_line(report.choice.days, multiple), highlight=False, markup=False)


def _left_out_line(days: float, multiple: float) -> str:
    """Why a compared horizon has no row: shorter than a day, or the same as another row."""
    name = {0.5: "Half", 2.0: "Double"}.get(multiple, f"{multiple:g} times")
    exact = days * multiple
    if round(exact) < 1:
        return (
            f"{name} of {_days(days)} ({_hours(exact * 24)}) is not shown: a horizon is counted "
            "in whole days, and within hours a late delivery or a weekend, not a lost habit, "
            "decides who comes back."
        )
    return f"{name} of {_days(days)} rounds to {_days(exact)}, a row above: not shown twice."


def _days(count: float) -> str:
    """``1 day``, ``28 days``."""
    from reengage.i18n import days

    return days(count)


def _hours(count: float) -> str:
    from reengage.i18n import hours

    return hours(count)


def _fmt(value: float | None, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)
