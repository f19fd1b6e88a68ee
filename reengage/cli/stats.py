"""``reengage stats``: funnels, lift against the holdout and call causes, as tables, CSV or JSON.

``show_results`` prints the tables for any console (the demo uses it too).
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from reengage.cli.app import _settings, _store, app, out
from reengage.cli.columns import Column, Layout, fits, natural_width
from reengage.cli.columns import say as _say
from reengage.cli.columns import show_tables as _show_tables
from reengage.cli.stats_uplift import rate, uplift_layout, uplift_note, uplift_title
from reengage.controls import clean
from reengage.errors import InputError
from reengage.timeutil import parse_since, utcnow

if TYPE_CHECKING:
    from reengage.stats import CampaignResult, Funnel, Lift, Results


class OutputFormat(StrEnum):
    """How ``reengage stats`` prints."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"


@app.command("stats")
def stats_command(
    campaign: Annotated[
        str | None, typer.Option("--campaign", help="Only this campaign (its id).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only customers who entered from then on: a date like 2026-01-31 "
            "(REENGAGE_TIMEZONE) or a time ago like 30d, 2w or 90min.",
        ),
    ] = None,
    output: Annotated[
        OutputFormat,
        typer.Option("--format", help="table, csv or json (see above for the CSV's columns)."),
    ] = OutputFormat.TABLE,
    wide: Annotated[
        bool,
        typer.Option(
            "--wide",
            help="All campaigns in one table with every column, however wide the terminal "
            "(else a block per campaign when the table does not fit).",
        ),
    ] = False,
) -> None:
    """Funnels per campaign and step, lift against the holdout, uplift per segment (who
    contact helps), and why customers stopped.

    The table uses the terminal's width: all campaigns in one table when it fits, else a
    block per campaign; no number is ever cut.

    The CSV has one row per fact, never a sum of other rows: campaign, step, group,
    subgroup, reason, scope, measure (what the row counts) and value. Summing the values of
    one measure over any rows never counts anything twice. Money has 2 decimals, lift is in
    percentage points. Measures: entered and came_back (per campaign and group); reactivated
    and also_entered_another (per campaign, treated, each customer once); in_window (per
    campaign and group); sent, delivered,
    bounced, opened, clicked, replied, unsubscribed, complained, put_on_call_list, credited
    and revenue (per step; revenue also for the held_out group); lift_points, ci_low_points,
    ci_high_points, verdict_kind and verdict (per campaign); segment_entered and
    segment_came_back (per campaign, group and segment, the subgroup),
    segment_uplift_points, segment_ci_low_points, segment_ci_high_points,
    segment_verdict_kind and segment_verdict (per campaign and segment), and the same per
    rhythm class: rhythm_entered, rhythm_came_back, rhythm_uplift_points,
    rhythm_ci_low_points, rhythm_ci_high_points, rhythm_verdict_kind and rhythm_verdict;
    calls (per reason and scope; an empty reason: none given), value_at_risk (per reason,
    each customer once) and value_at_risk_all (each customer who gave any reason once).
    README.md (Results) says more.
    """
    from reengage import stats

    now = utcnow()
    start = None
    if since is not None:
        try:
            start = parse_since(since, now, _settings().zone)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--since") from None
        if start > now:
            raise typer.BadParameter(
                f"{since!r} is in the future: give a day in the past", param_hint="--since"
            )
    store = _store()
    try:
        results = stats.campaign_results(store, now, campaign=campaign, since=start)
    except InputError as exc:  # the only input left to refuse is the campaign
        raise typer.BadParameter(str(exc), param_hint="--campaign") from None
    finally:
        store.close()
    if output is OutputFormat.JSON:
        out.print_json(json.dumps(stats.to_json(results)))
    elif output is OutputFormat.CSV:
        # Straight to stdout: rich would wrap long lines and colour numbers. On a terminal,
        # a control character in a name is shown, never obeyed.
        text = stats.to_csv(results)
        typer.echo(clean(text) if sys.stdout.isatty() else text, nl=False)
    else:
        show_results(out, results, wide=wide)


FUNNEL_COLUMNS = (
    ("sent", "sent"),
    ("delivered", "delivered"),
    ("bounced", "bounced"),
    ("opened", "opened*"),
    ("clicked", "clicked"),
    ("replied", "replied"),
    ("unsubscribed", "unsub."),
    ("complained", "complaints"),
    ("calls", "calls"),
    ("reactivated", "reactivated"),
    ("revenue", "revenue"),
)


def show_results(console: Console, results: Results, *, wide: bool = False) -> None:
    """Print the funnels, lifts and call causes (what ``reengage stats`` shows).

    Every campaign in one table of each kind when the console is wide enough for all the
    funnel's columns (or ``wide`` asks for that, however long it makes the lines); else a
    block per campaign. No number is ever cut: columns that do not fit go to a table below.
    """
    from reengage import stats

    width = console.width
    scope = f" since {results.since:%Y-%m-%d %H:%M} UTC" if results.since else ""
    if not results.campaigns:
        console.print(f"No customer has entered a campaign{scope} yet.", markup=False)
    else:
        funnel = _funnel_layout(results.campaigns)
        if wide or fits(funnel, width):
            if wide:  # one line per row, however long: the terminal or a pager wraps it
                width = max(width, natural_width(funnel))
            _show_tables(console, f"Funnel: mails of customers who entered{scope}", funnel, width)
            _say(console, f"* {stats.OPENS_NOTE}.", width, "dim")
            lift = _lift_layout(results)
            _show_tables(console, f"Lift against the holdout ({_horizon(results)})", lift, width)
            for c in results.campaigns:
                for note in (_window_note(c, results), _followed_note(c, results)):
                    if note is not None:
                        _say(console, note, width)
            uplift = uplift_layout(results.campaigns, per_campaign=True)
            _show_tables(console, uplift_title(results), uplift, width)
        else:
            _show_blocks(console, results, scope)
    _show_calls(console, results, width)


def _count(n: int) -> str:
    return f"{n:,}"


def _money(amount: float) -> str:
    return f"{amount:,.0f}"


def _funnel_columns(funnels: list[Funnel]) -> list[Column]:
    columns = [
        Column(label, [_count(getattr(f, name)) for f in funnels])
        for name, label in FUNNEL_COLUMNS
        if name != "revenue"
    ]
    return [*columns, Column("revenue", [_money(f.revenue) for f in funnels])]


def _funnel_layout(campaigns: list[CampaignResult]) -> Layout:
    labels: list[str | Text] = []
    enrolled: list[str | Text] = []
    held_out: list[str | Text] = []
    funnels: list[Funnel] = []
    sections: set[int] = set()
    for c in campaigns:
        labels.append(Text(c.campaign_id, style="bold"))
        enrolled.append(_count(c.enrolled))
        held_out.append(_count(c.held_out))
        funnels.append(c.funnel)
        for step in c.steps:
            labels.append(Text(f"  {step.key}"))
            enrolled.append("")
            held_out.append("")
            funnels.append(step.funnel)
        sections.add(len(labels) - 1)
    return Layout(
        Column("campaign / step", labels, right=False, text=True),
        [Column("entered", enrolled), Column("held out", held_out), *_funnel_columns(funnels)],
        sections,
    )


def _lift_cells(found: Lift) -> tuple[str, str]:
    """The lift and its interval, in percentage points."""
    from reengage.stats.intervals import VerdictKind, points

    if found.kind in (VerdictKind.NO_HOLDOUT, VerdictKind.NOT_ENOUGH_DATA):
        return "—", "—"  # no point estimate beside a verdict that has none
    interval = found.interval
    return (
        "—" if found.difference is None else f"{points(found.difference)} pts",
        "—" if interval is None else f"{points(interval.low)} to {points(interval.high)}",
    )


def _horizon(results: Results) -> str:
    from reengage.i18n import days

    return f"came back = bought within {days(results.horizon.total_seconds() / 86400)} of entering"


def _window_note(c: CampaignResult, results: Results) -> str | None:
    """Said when some who entered have not had the whole window yet: the lift counts them
    as they stand, so it is "so far", and the uplift table (whole windows only) differs."""
    if not (c.in_window_treated or c.in_window_held_out):
        return None
    from reengage.i18n import days

    within = days(results.horizon.total_seconds() / 86400)
    return (
        f"{c.campaign_id}: {c.in_window_treated:,} of {c.lift.treated:,} treated and "
        f"{c.in_window_held_out:,} of {c.lift.held_out:,} held out entered within the last "
        f"{within}: the lift counts them as they stand (so far, not yet the whole window); "
        "the uplift by segment counts only who has had the whole window."
    )


def _followed_note(c: CampaignResult, results: Results) -> str | None:
    """Said when some of the campaign's treated entered another campaign within the window."""
    if not c.also_entered:
        return None
    from reengage.i18n import days

    within = days(results.horizon.total_seconds() / 86400)
    return (
        f"{c.campaign_id}: {c.also_entered:,} of {c.lift.treated:,} treated also entered "
        f"another campaign within {within} of entering this one; their returns count "
        f"for each, so this lift is of {c.campaign_id} with what followed it."
    )


def _lift_layout(results: Results) -> Layout:
    lifts = [c.lift for c in results.campaigns]
    cells = [_lift_cells(found) for found in lifts]
    return Layout(
        Column(
            "campaign", [Text(c.campaign_id) for c in results.campaigns], right=False, text=True
        ),
        [
            Column("treated came back", [rate(f.treated_reactivated, f.treated) for f in lifts]),
            Column("holdout came back", [rate(f.held_out_reactivated, f.held_out) for f in lifts]),
            Column("lift", [lift for lift, _ in cells]),
            Column("95% CI", [interval for _, interval in cells]),
            Column("verdict", [Text(f.verdict) for f in lifts], right=False, text=True),
        ],
    )


def _show_blocks(console: Console, results: Results, scope: str) -> None:
    """A block per campaign: its funnel with a column per step, its lift and verdict in words."""
    from reengage import stats

    width = console.width
    _say(console, f"Results per campaign, for customers who entered{scope}", width, "bold")
    _say(console, f"* {stats.OPENS_NOTE}.", width, "dim")
    for c in results.campaigns:
        console.print()
        enrolled = (
            f"{c.campaign_id}: {c.enrolled:,} entered: {c.lift.treated:,} treated, "
            f"{c.held_out:,} held out"
        )
        _show_tables(console, enrolled, _steps_layout(c), width, "bold")
        found = c.lift
        lift, interval = _lift_cells(found)
        from reengage.stats.intervals import VerdictKind

        if found.kind is VerdictKind.NO_HOLDOUT:
            estimate = "no estimate: nobody was held out to compare with"
        elif lift == "—":
            estimate = "no estimate until there is a verdict"
        else:
            estimate = f"lift {lift}, 95% CI {interval}"
        _say(
            console,
            f"Lift against the holdout ({_horizon(results)}): treated "
            f"{rate(found.treated_reactivated, found.treated)}, holdout "
            f"{rate(found.held_out_reactivated, found.held_out)}; {estimate}.",
            width,
        )
        _say(console, f"Verdict: {found.verdict}", width, "bold")
        for note in (_window_note(c, results), _followed_note(c, results)):
            if note is not None:
                _say(console, note, width)
        note = uplift_note(c, results)
        if note is None:
            layout = uplift_layout([c], per_campaign=False)
            _show_tables(console, uplift_title(results), layout, width)
        else:
            _say(console, f"Uplift by segment: {note}.", width)


def _steps_layout(c: CampaignResult) -> Layout:
    """A campaign's funnel turned on its side: a row per count, a column per step, so a
    narrow terminal shows a campaign of a few steps in one table."""
    funnels = [c.funnel, *(s.funnel for s in c.steps)]
    cells = _funnel_columns(funnels)
    return Layout(
        Column("", [Text(column.header) for column in cells], right=False, text=True),
        [
            Column(header, [column.cells[i] for column in cells])
            for i, header in enumerate(["all steps", *(s.key for s in c.steps)])
        ],
    )


def _show_calls(console: Console, results: Results, width: int) -> None:
    calls = results.calls
    if not calls.calls:
        _say(console, "Calls: no outcomes recorded yet.", width)
        return
    reasons = calls.reasons
    s = calls.scopes
    title = (
        f"Calls: {calls.calls:,} made, {calls.reached:,} reached someone who said why they stopped"
    )
    layout = Layout(
        Column(
            "reason",
            [*(Text(r.reason.replace("_", " ")) for r in reasons), "all"],
            right=False,
            text=True,
        ),
        [
            Column("calls", [*(_count(r.calls) for r in reasons), _count(calls.reached)]),
            *(
                Column(scope, [*(_count(getattr(r, scope)) for r in reasons), _count(s[scope])])
                for scope in ("specific", "systemic", "unsure")
            ),
            Column(
                "value at risk / year",
                [*(_money(r.value_at_risk) for r in reasons), _money(calls.value_at_risk)],
            ),
        ],
        {len(reasons) - 1},
    )
    console.print()
    _show_tables(console, title, layout, width)
