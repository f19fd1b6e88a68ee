"""`reengage score`: every customer's lapse score, the fit of the score on this business's
history, and its backtest, with the horizon in force and why (see :mod:`reengage.horizon`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reengage.cli.app import _store, app, out, parse_day
from reengage.cli.columns import Column, Layout, say, show_tables
from reengage.timeutil import parse_duration, utcnow

if TYPE_CHECKING:
    from reengage import backtesting, scoring
    from reengage.horizon import HorizonChoice
    from reengage.store import Store
    from reengage.store.customers import Overview


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
                say(out, "saved: detection and `reengage score` now use this model")
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
        overview = store.customers.overview() if not assessments else None
    finally:
        store.close()
    if out_file is not None:
        count = scoring.write_csv(assessments, out_file)
        say(out, f"wrote {count} customers to {out_file}")
    if overview is not None:  # nobody to score: say so, not a typical gap of nobody
        say(out, _nobody(overview))
        return
    if out_file is not None:
        say(out, _horizon_line(model.horizon_days, choice))
        return
    lapsed_count = sum(a.lapse_score >= 0.5 for a in assessments)
    declining = sum(a.declining for a in assessments)
    say(
        out,
        f"{len(assessments)} customers scored as of {(when or now):%Y-%m-%d}: "
        f"{lapsed_count} have probably lapsed (score ≥ 0.5), {declining} are shrinking. "
        f"A customer with too few orders for a rhythm of their own is measured against "
        f"the median gap of all customers, {_days(population.typical_gap_days)}. "
        "Use --out FILE.csv for all rows.",
    )
    say(out, _horizon_line(model.horizon_days, choice))


def _nobody(overview: Overview) -> str:
    """Why nobody was scored, and the import that fixes it."""
    if overview.customers == 0:
        return (
            "No customers yet, so nobody to score: import your customers and their orders "
            "first (reengage import customers FILE, then reengage import activities FILE)."
        )
    return (
        f"{overview.customers:,} customers but no orders yet, so nobody to score: import "
        "their orders first (reengage import activities FILE)."
    )


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
        accepted = first.date() + timedelta(days=1)  # its midnight is after the first order
        why = (
            f"{when:%Y-%m-%d} is the first day of your history, so there is no history before "
            "it to judge"
            if when.date() == first.date()
            else f"{when:%Y-%m-%d} is before your history begins (first activity "
            f"{first:%Y-%m-%d}), so nobody has a history to judge as of it"
        )
        raise typer.BadParameter(
            f"{why}: the first date accepted is {accepted:%Y-%m-%d}",
            param_hint="--as-of",
        )


def _backtest(store: Store, when: datetime, named: HorizonChoice | None, now: datetime) -> None:
    """Judge the horizon named, else the one the model in force answers, else (no model
    fitted yet) the one the rhythm as it stood on ``when`` calls for."""
    from reengage import backtesting, scoring

    profiles = list(store.detection.profiles_as_of(when))
    in_force = store.lapse_models.in_force() if named is None else None
    if named is not None:
        choice, which, mark = named, "the horizon", "◀ named"
    elif in_force is not None:
        days = in_force.model.horizon_days
        choice = in_force.horizon or _fixed_horizon(days)
        which, mark = "the horizon of the model in force", "◀ in force"
    else:
        choice = scoring.horizon_of(profiles)
        which, mark = "the horizon chosen from your customers' rhythm", "◀ chosen"
    fixed = named is not None or in_force is not None  # the same whatever the date
    end = when + timedelta(days=choice.days)
    first = store.customers.overview().first_activity_at
    if end > now:
        which = f"{which} ({_days(choice.days)})"
        latest, then = backtesting.latest_as_of(store, now, choice, fixed=fixed)
        if first is not None and latest <= first:
            raise typer.BadParameter(
                f"{when:%Y-%m-%d} plus {which} ends on {end:%Y-%m-%d}, which has not come "
                f"yet, and your history (from {first:%Y-%m-%d}) is too short for any date's "
                "horizon to have ended: name a shorter --horizon",
                param_hint="--as-of",
            )
        its = (
            ""
            if fixed or then.days == choice.days
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
    say(out, _horizon_line(choice.days, in_force.horizon if in_force else choice))
    if in_force is not None:
        say(
            out,
            f"That is the horizon of the model in force (kept "
            f"{in_force.created_at:%Y-%m-%d}), so this backtest judges it; --horizon names "
            "another.",
        )
    _print_fit(fitted, horizon=False)
    _print_backtest(report, mark)


def _fixed_horizon(days: float) -> HorizonChoice:
    """A fixed horizon of ``days`` (a model kept before its reason was recorded)."""
    from reengage.horizon import named_horizon

    return named_horizon(days)


def _print_fit(fitted: scoring.FitResult, *, horizon: bool = True) -> None:
    if horizon:
        say(out, _horizon_line(fitted.model.horizon_days, fitted.horizon))
    if fitted.kept_prior_because is not None:
        say(out, f"lapse model: kept the rhythm prior — {fitted.kept_prior_because}")
        return
    say(
        out,
        f"lapse model: {fitted.model.describe()}; {fitted.did_not_return} of "
        f"{fitted.customers} did not come back within the horizon. Ranking on that history: "
        f"ROC AUC {_fmt(fitted.auc, '{:.3f}')} (plain recency "
        f"{_fmt(fitted.auc_recency, '{:.3f}')}).",
    )


def _print_backtest(report: backtesting.BacktestReport, mark: str) -> None:
    from reengage import backtesting

    width = out.width
    end = report.as_of + report.horizon
    say(
        out,
        f"Scored {report.customers} customers as of {report.as_of:%Y-%m-%d}; "
        f"{report.did_not_return} ({report.did_not_return / max(report.customers, 1):.0%}) "
        f"placed no order by {end:%Y-%m-%d}.",
    )
    methods = report.methods
    rankings = Layout(
        Column("ranking", [m.name for m in methods], right=False, text=True),
        [
            Column("ROC AUC", [_fmt(m.auc, "{:.3f}") for m in methods]),
            Column("precision, top 5%", [_fmt(m.precision_top5, "{:.0%}") for m in methods]),
            Column("precision, top 10%", [_fmt(m.precision_top10, "{:.0%}") for m in methods]),
        ],
    )
    title = "How well each ranking finds the customers who did not come back"
    show_tables(out, title, rankings, width)
    bands = report.calibration
    calibration = Layout(
        Column("score band", [f"{b.low:.1f}–{b.high:.1f}" for b in bands], right=False),
        [
            Column("customers", [str(b.count) for b in bands]),
            Column("predicted", [f"{b.predicted:.0%}" for b in bands]),
            Column("did not come back", [f"{b.observed:.0%}" for b in bands]),
        ],
    )
    title = "Calibration of lapse_score: predicted against observed"
    show_tables(out, title, calibration, width)
    rows = report.horizons
    over = [h for h in rows if h.lapse is not None and h.recency is not None]
    sides = Layout(
        Column("horizon", [_days(h.days) for h in rows], right=False),
        [
            Column("", [_mark(h, mark, h in over) for h in rows], right=False, text=True),
            Column(
                "did not come back",
                [
                    f"{h.did_not_return} of {h.customers}"
                    if h in over
                    else f"not over until {h.ends:%Y-%m-%d}"
                    for h in rows
                ],
            ),
            Column("ROC AUC", [_fmt(h.lapse.auc if h.lapse else None, "{:.3f}") for h in rows]),
            Column(
                "precision, top 10%",
                [_fmt(h.lapse.precision_top10 if h.lapse else None, "{:.0%}") for h in rows],
            ),
            Column(
                "recency's ROC AUC",
                [_fmt(h.recency.auc if h.recency else None, "{:.3f}") for h in rows],
            ),
        ],
    )
    title = "The lapse score at several horizons (each fitted for its own horizon)"
    show_tables(out, title, sides, width)
    for multiple in backtesting.left_out(report.choice.days):
        say(out, _left_out_line(report.choice.days, multiple))


def _mark(row: backtesting.HorizonResult, mark: str, over: bool) -> str:
    """The chosen row's mark, and "(rhythm prior)" where too little history was fitted."""
    prior = " (rhythm prior)" if over and not row.fitted else ""
    return f"{mark if row.chosen else ''}{prior}".strip()


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
