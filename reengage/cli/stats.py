"""``reengage stats``: funnels, lift against the holdout and call causes, as tables, CSV or JSON.

``show_results`` prints the tables for any console (the demo uses it too).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from reengage.cli.app import _settings, _store, app, out
from reengage.errors import InputError
from reengage.timeutil import parse_since, utcnow

if TYPE_CHECKING:
    from reengage.stats import CampaignResult, Funnel, Results


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
        OutputFormat, typer.Option("--format", help="table, csv or json.")
    ] = OutputFormat.TABLE,
) -> None:
    """Funnels per campaign and step, lift against the holdout, and why customers stopped."""
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
        # Straight to stdout: rich would wrap long lines and colour numbers.
        typer.echo(stats.to_csv(results), nl=False)
    else:
        show_results(out, results)


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


def show_results(console: Console, results: Results) -> None:
    """Print the funnel, lift and call tables (what ``reengage stats`` shows)."""
    from reengage import stats

    scope = f" since {results.since:%Y-%m-%d %H:%M} UTC" if results.since else ""
    if not results.campaigns:
        console.print(f"No customer has entered a campaign{scope} yet.", markup=False)
    else:
        console.print(_funnel_table(results.campaigns, scope))
        console.print(f"* {stats.OPENS_NOTE}.", markup=False, highlight=False, style="dim")
        console.print(_lift_table(results))
    _show_calls(console, results)


def _funnel_table(campaigns: list[CampaignResult], scope: str) -> Table:
    table = Table(title=f"Funnel: mails of customers who entered{scope}", title_justify="left")
    table.add_column("campaign / step")
    table.add_column("enrolled", justify="right")
    table.add_column("held out", justify="right")
    for _, label in FUNNEL_COLUMNS:
        table.add_column(label, justify="right")
    for c in campaigns:
        table.add_row(
            Text(c.campaign_id, style="bold"),
            str(c.enrolled),
            str(c.held_out),
            *_funnel_cells(c.funnel),
            end_section=not c.steps,
        )
        for i, step in enumerate(c.steps):
            table.add_row(
                Text(f"  {step.key}"),
                "",
                "",
                *_funnel_cells(step.funnel),
                end_section=i == len(c.steps) - 1,
            )
    return table


def _funnel_cells(funnel: Funnel) -> list[str]:
    cells = [str(getattr(funnel, name)) for name, _ in FUNNEL_COLUMNS[:-1]]
    return [*cells, f"{funnel.revenue:,.0f}"]


def _rate(count: int, total: int) -> str:
    return f"{count}/{total} ({100 * count / total:.1f}%)" if total else "—"


def _lift_table(results: Results) -> Table:
    from reengage.stats.intervals import points

    days = round(results.horizon.total_seconds() / 86400)
    table = Table(
        title=f"Lift against the holdout (came back = bought within {days} days of entering)",
        title_justify="left",
    )
    for column in ("campaign", "treated came back", "holdout came back", "lift", "95% CI"):
        table.add_column(column, justify="left" if column == "campaign" else "right")
    table.add_column("verdict")
    for c in results.campaigns:
        found = c.lift
        interval = found.interval
        table.add_row(
            Text(c.campaign_id),
            _rate(found.treated_reactivated, found.treated),
            _rate(found.held_out_reactivated, found.held_out),
            "—" if found.difference is None else f"{points(found.difference)} pts",
            "—" if interval is None else f"{points(interval.low)} to {points(interval.high)}",
            Text(found.verdict),
        )
    return table


def _show_calls(console: Console, results: Results) -> None:
    calls = results.calls
    if not calls.calls:
        console.print("Calls: no outcomes recorded yet.", markup=False)
        return
    table = Table(
        title=f"Calls: {calls.calls} made, {calls.reached} reached someone who said why "
        "they stopped",
        title_justify="left",
    )
    table.add_column("reason")
    for column in ("calls", "specific", "systemic", "unsure", "value at risk / year"):
        table.add_column(column, justify="right")
    for r in calls.reasons:
        table.add_row(
            Text(r.reason.replace("_", " ")),
            str(r.calls),
            str(r.specific),
            str(r.systemic),
            str(r.unsure),
            f"{r.value_at_risk:,.0f}",
        )
    s = calls.scopes
    table.add_section()
    table.add_row(
        "all", str(calls.reached), str(s["specific"]), str(s["systemic"]), str(s["unsure"]), ""
    )
    console.print(table)
