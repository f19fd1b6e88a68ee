"""Commands for campaign authors: validate, preview, simulate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from reengage import authoring, compose
from reengage import simulate as simulation
from reengage.cli.app import (
    _settings,
    _store,
    _workspace,
    app,
    err,
    out,
)
from reengage.digest import DigestConfig
from reengage.digest.mail import check_templates
from reengage.errors import InputError
from reengage.timeutil import utcnow

# -- campaigns ---------------------------------------------------------------------------------


@app.command()
def validate(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Campaign files or folders (default: campaigns/).")
    ] = None,
) -> None:
    """Check campaigns and their templates completely; exit 1 on any problem."""
    ws = _workspace()
    targets = paths or [ws.campaigns_dir]
    for target in targets:
        if not target.exists():
            raise InputError(f"{target}: no such file or folder")
    result = authoring.validate(ws, targets, root=Path.cwd())
    for problem in result.problems:
        err.print(str(problem), markup=False, highlight=False)
    for campaign_id in sorted(result.campaigns):
        campaign = result.campaigns[campaign_id]
        kinds = ", ".join(s.key + (" (call)" if s.is_call else "") for s in campaign.steps)
        state = "" if campaign.enabled else " [disabled]"
        out.print(
            f"ok  {result.labels[campaign_id]}: {campaign_id}{state} — {kinds}",
            markup=False,
            highlight=False,
        )
    # The reps' digest is rendered from the same templates folder: check it too.
    digest_problems = check_templates(ws, DigestConfig.from_settings(_settings()), utcnow())
    for found in digest_problems:
        err.print(str(found), markup=False, highlight=False)
    if not digest_problems:
        out.print("ok  the reps' digest templates", markup=False, highlight=False)
    problems = [*map(str, result.problems), *map(str, digest_problems)]
    broken = len({p.file for p in result.problems} | {p.file for p in digest_problems})
    out.print(
        f"{len(result.campaigns)} campaign(s) valid, {len(problems)} problem(s) "
        f"in {broken} file(s)",
        markup=False,
    )
    if problems:
        raise typer.Exit(1)


def _load_one(ws: compose.Workspace, campaign_id: str) -> Any:
    result = authoring.validate(ws, [ws.campaigns_dir], root=Path.cwd())
    campaign = result.campaigns.get(campaign_id)
    if campaign is None:
        mine = [str(p) for p in result.problems]
        hint = (
            ("; it has problems:\n" + "\n".join(mine))
            if mine
            else (f"; campaigns: {', '.join(sorted(result.campaigns)) or 'none'}")
        )
        raise InputError(f"no valid campaign {campaign_id!r} in {ws.campaigns_dir}{hint}")
    return campaign


@app.command()
def preview(
    campaign_id: Annotated[str, typer.Argument(metavar="CAMPAIGN", help="campaign id")],
    step: Annotated[str, typer.Argument(help="step key")],
    customer: Annotated[str, typer.Option(help="customer id to render for")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the .eml and .html")] = Path(
        "preview"
    ),
) -> None:
    """Render the exact mail a customer would get: writes .eml and .html, prints the text."""
    ws = _workspace()
    campaign = _load_one(ws, campaign_id)
    store = _store()
    try:
        shown = authoring.preview(
            ws, store, campaign, step, customer, now=utcnow(), out_dir=out_dir
        )
    except (KeyError, LookupError) as exc:
        raise InputError(str(exc.args[0])) from None
    finally:
        store.close()
    for name, value in shown.message.items():
        out.print(f"{name}: {value}", markup=False, highlight=False)
    out.print("", markup=False)
    out.print(shown.rendered.text, markup=False, highlight=False)
    out.print(
        f"wrote {shown.eml} (open in a mail program) and {shown.html} (open in a browser)",
        markup=False,
    )


@app.command()
def simulate(
    days: Annotated[int, typer.Option(min=1, max=730, help="How many days to replay.")] = 90,
    campaign_id: Annotated[
        str | None, typer.Option("--campaign", help="Only this campaign.")
    ] = None,
) -> None:
    """Replay campaigns from today, day by day: who enters, which mail goes when, who exits.

    Nothing is sent or written; send windows and the frequency cap are applied.
    """
    ws = _workspace()
    result = authoring.validate(ws, [ws.campaigns_dir], root=Path.cwd())
    for problem in result.problems:
        err.print(f"skipped: {problem}", markup=False, highlight=False)
    chosen = list(result.campaigns.values())
    if campaign_id is not None:
        chosen = [c for c in chosen if c.id == campaign_id]
        if not chosen:
            raise InputError(
                f"no valid campaign {campaign_id!r}; campaigns: "
                f"{', '.join(sorted(result.campaigns)) or 'none'}"
            )
    store = _store()
    try:
        plan = simulation.simulate(ws, store, chosen, now=utcnow(), days=days)
    finally:
        store.close()
    table = Table(title=f"Plan for the next {days} days (nothing is sent)")
    for column in ("day", "enter", "held out", "mails", "calls", "exit"):
        table.add_column(column, justify="left" if column in ("day", "mails", "exit") else "right")
    for day in plan.days:
        if day.quiet:
            continue
        table.add_row(
            f"{day.day:%a %Y-%m-%d}",
            str(sum(day.entered.values())),
            str(sum(day.held_out.values())),
            ", ".join(f"{k} ×{v}" for k, v in sorted(day.mails.items())) or "—",
            str(sum(day.calls.values())),
            ", ".join(f"{k} ×{v}" for k, v in sorted(day.exits.items())) or "—",
        )
    out.print(table)
    for campaign, examples in plan.examples.items():
        out.print(f"{campaign}, for example:", markup=False)
        for line in examples:
            out.print(f"  {line}", markup=False, highlight=False)
    for reason, count in plan.skipped.most_common():
        out.print(f"not entered: {reason} ×{count}", markup=False, highlight=False)
