"""``reengage sends``: the mails a person must settle — failed to render, or of unknown fate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from reengage import authoring
from reengage.cli.app import _store, _workspace, out
from reengage.cli.lazy import commands_typer
from reengage.errors import InputError
from reengage.models import MessageStatus
from reengage.settle import HELD, Decision, settle
from reengage.timeutil import utcnow

# The group is declared in reengage/cli/__init__.py and reads this when first used.
sends_app = commands_typer()


@sends_app.command("list")
def list_held(
    status: Annotated[str | None, typer.Option(help="failed or unknown (default: both)")] = None,
    campaign: Annotated[str | None, typer.Option(help="Only this campaign.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
) -> None:
    """Mails a person must look at, newest first, with the customer, step and reason."""
    if status is not None and status not in HELD:
        raise typer.BadParameter(
            f"{status!r}: choose one of {', '.join(HELD)}", param_hint="--status"
        )
    store = _store()
    try:
        rows = store.sending.held_messages(
            [status] if status else list(HELD), campaign_id=campaign, limit=limit + 1
        )
        counts = store.sending.message_counts() if len(rows) > limit and campaign is None else {}
    finally:
        store.close()
    if not rows:
        out.print("No failed or unknown mails.", markup=False)
        return
    if len(rows) > limit:  # more wait than shown: say so, never a count that looks whole
        rows = rows[:limit]
        total = sum(counts.get(s, 0) for s in ([status] if status else HELD))
        title = f"the newest {limit} of {total or 'more'} mails to settle (raise --limit)"
    else:
        title = f"{len(rows)} mail(s) to settle"
    table = Table(title=title, expand=False)
    for column in ("id", "status", "customer", "campaign/step", "first tried (UTC)", "reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row.message_id),
            row.status,
            f"{row.customer} <{row.email}>",
            f"{row.campaign_id}/{row.step_key}",
            f"{row.created_at:%Y-%m-%d %H:%M}",
            row.reason or "",
        )
    out.print(table)
    if any(r.status == MessageStatus.UNKNOWN.value for r in rows):
        out.print(
            "Unknown mails may have reached the customer (the line was lost after they went "
            "out): check your provider's log, then `reengage sends resolve sent|resend|skip "
            "ID...`.",
            markup=False,
        )
    if any(r.status == MessageStatus.FAILED.value for r in rows):
        out.print(
            "Failed mails were never sent. Fix the cause in their reason (a template: "
            "`reengage validate`; a mail the server refused: its size or content), then "
            "`reengage sends retry --failed` sends each once at the next pass, or "
            "`reengage sends resolve skip ID...` goes on without it.",
            markup=False,
        )


@sends_app.command("unknown")
def list_unknown(
    campaign: Annotated[str | None, typer.Option(help="Only this campaign.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
) -> None:
    """Mails that may or may not have arrived (``sends list --status unknown``)."""
    list_held(status=MessageStatus.UNKNOWN.value, campaign=campaign, limit=limit)


@sends_app.command("resolve")
def resolve(
    decision: Annotated[
        Decision,
        typer.Argument(
            metavar="DECISION",
            help="sent: the customer got it; resend: send it once more; skip: never send it",
            case_sensitive=False,
        ),
    ],
    message_ids: Annotated[
        list[int] | None, typer.Argument(metavar="[ID]...", help="Message ids from `sends list`.")
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every failed and unknown mail (see --status).")
    ] = False,
    status: Annotated[str | None, typer.Option(help="Only failed, or only unknown.")] = None,
    campaign: Annotated[str | None, typer.Option(help="Only this campaign's.")] = None,
) -> None:
    """Settle mails that failed or whose fate is unknown; each enrollment moves on.

    `sent` records the mail as received (check your provider's log first) and the sequence
    goes on; `resend` sends it once more at the daemon's next pass; `skip` never sends it
    and the sequence goes on with its next step.
    """
    _settle(decision, message_ids, every, status, campaign)


@sends_app.command("retry")
def retry(
    message_ids: Annotated[
        list[int] | None, typer.Argument(metavar="[ID]...", help="Message ids from `sends list`.")
    ] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Every failed mail.")] = False,
    campaign: Annotated[str | None, typer.Option(help="Only this campaign's.")] = None,
) -> None:
    """Make and send failed mails again at the daemon's next pass (each at most once):
    `sends resolve resend --all --status failed`, shorter."""
    _settle(Decision.RESEND, message_ids, failed, MessageStatus.FAILED.value, campaign)


def _settle(
    decision: Decision,
    message_ids: list[int] | None,
    every: bool,
    status: str | None,
    campaign: str | None,
) -> None:
    if status is not None and status not in HELD:
        raise typer.BadParameter(
            f"{status!r}: choose one of {', '.join(HELD)}", param_hint="--status"
        )
    if not message_ids and not every:
        raise InputError(
            "name message ids (see `reengage sends list`) or pass --all (--failed for retry)"
        )
    ws = _workspace()
    campaigns = authoring.validate(ws, [ws.campaigns_dir], root=Path.cwd()).campaigns
    store = _store()
    try:
        statuses = [status] if status else list(HELD)
        held = store.sending.held_for_settling(statuses, message_ids=message_ids or None)
        unheld = sorted(set(message_ids or []) - {m.message_id for m in held})
        done = settle(
            store,
            campaigns,
            decision,
            utcnow(),
            message_ids=message_ids or None,
            campaign_id=campaign,
            status=status,
        )
    finally:
        store.close()
    for what, count in sorted(done.items()):
        out.print(f"{count} mail(s) {what}", markup=False)
    if unheld:
        wanted = f"{status} " if status else "failed or unknown "
        raise InputError(
            f"not settled: {', '.join(map(str, unheld))} — no {wanted}mail has this id (it "
            "may be sending still, settled already, or mistyped): see `reengage sends list`"
        )
    if not done or not sum(done.values()):
        out.print("Nothing to settle: no failed or unknown mail matched.", markup=False)
        return
    if decision is Decision.RESEND:
        out.print(
            "The daemon makes and sends them at its next pass (a template that still fails "
            "marks them failed again).",
            markup=False,
        )
