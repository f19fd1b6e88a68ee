"""``reengage report``: what the reps' calls taught us, cause by cause."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from reengage.cli.app import _settings, _store, out
from reengage.cli.lazy import commands_typer
from reengage.digest import causes
from reengage.digest.prompts import REASON_WORDS
from reengage.timeutil import parse_since, utcnow

# The group is declared in reengage/cli/__init__.py and reads this when first used.
report_app = commands_typer()


@report_app.command("causes")
def report_causes(
    since: Annotated[
        str | None,
        typer.Option(help="Only calls from then on: 2026-01-31, or a time ago like 30d."),
    ] = None,
) -> None:
    """Why customers stopped: systemic causes first, value lost per cause, their own words."""
    settings = _settings()
    start = None
    if since is not None:
        try:
            start = parse_since(since, utcnow(), settings.zone)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--since") from None
    store = _store()
    try:
        names: dict[int, str] = {}

        def name_of(customer_id: int) -> str:
            if customer_id not in names:
                found = store.customers.customers_by_ids([customer_id]).get(customer_id)
                names[customer_id] = (
                    (" ".join(filter(None, (found.first_name, found.last_name))) or found.email)
                    if found
                    else f"customer {customer_id}"
                )
            return names[customer_id]

        report = causes(store, start, name_of)
    finally:
        store.close()
    scope = f" since {start:%Y-%m-%d %H:%M} UTC" if start is not None else ""
    out.print(
        f"{report.calls} calls{scope}; {report.reached} reached someone who said why they stopped",
        markup=False,
    )
    if not report.rows:
        out.print(
            "No reasons recorded yet: `reengage calls log CUSTOMER` after a call.", markup=False
        )
        return
    table = Table(title="Why they stopped (systemic first: these are the business's to fix)")
    for column in ("cause", "calls", "systemic", "specific", "unsure", "value lost / year"):
        table.add_column(column, justify="left" if column == "cause" else "right")
    for row in report.rows:
        table.add_row(
            REASON_WORDS.get(row.reason, row.reason),
            str(row.calls),
            str(row.systemic),
            str(row.specific),
            str(row.unsure),
            f"{row.value_lost:,.0f} {settings.currency}",
        )
    out.print(table, markup=False)
    for row in report.rows:
        if row.notes:
            out.print(
                f"\n{REASON_WORDS.get(row.reason, row.reason)} — in their words:", markup=False
            )
            for line in row.notes[-10:]:
                out.print(f"  {line}", markup=False, highlight=False)
    if report.next_steps:
        steps = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report.next_steps.most_common())
        out.print(f"\nNext steps chosen: {steps}", markup=False)
