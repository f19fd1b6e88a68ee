"""``reengage sends``: the mails a person must settle — failed to render, or of unknown fate."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from reengage.cli.app import _store, app, out
from reengage.errors import InputError
from reengage.models import MessageStatus
from reengage.timeutil import utcnow

sends_app = typer.Typer(
    help="Mails that failed or whose outcome is unknown: list them, send them again.",
    no_args_is_help=True,
)
app.add_typer(sends_app, name="sends")

HELD = (MessageStatus.FAILED.value, MessageStatus.UNKNOWN.value)


@sends_app.command("list")
def list_held(
    status: Annotated[str | None, typer.Option(help="failed or unknown (default: both)")] = None,
    campaign: Annotated[str | None, typer.Option(help="Only this campaign.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
) -> None:
    """Mails a person must look at, newest first, with the customer, step and reason."""
    if status is not None and status not in HELD:
        raise InputError(f"--status {status!r}: choose one of {', '.join(HELD)}")
    store = _store()
    try:
        rows = store.held_messages(
            [status] if status else list(HELD), campaign_id=campaign, limit=limit
        )
    finally:
        store.close()
    if not rows:
        out.print("No failed or unknown mails.", markup=False)
        return
    table = Table(title=f"{len(rows)} mail(s) to settle", expand=False)
    for column in ("id", "status", "customer", "campaign/step", "when (UTC)", "reason"):
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
    if any(r.status == MessageStatus.FAILED.value for r in rows):
        out.print(
            "Failed mails were never sent. Fix the template (reengage validate), then "
            "`reengage sends retry --failed` sends each once at the next pass.",
            markup=False,
        )


@sends_app.command("retry")
def retry(
    message_ids: Annotated[
        list[int] | None, typer.Argument(metavar="[ID]...", help="Message ids from `sends list`.")
    ] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Every failed mail.")] = False,
    campaign: Annotated[str | None, typer.Option(help="Only this campaign's.")] = None,
) -> None:
    """Make and send failed mails again at the daemon's next pass (each at most once)."""
    if not message_ids and not failed:
        raise InputError("name message ids (see `reengage sends list`) or pass --failed")
    store = _store()
    try:
        count = store.retry_failed(message_ids or None, campaign_id=campaign, now=utcnow())
    finally:
        store.close()
    out.print(
        f"{count} failed mail(s) queued again; the daemon makes and sends them at its next "
        "pass (a template that still fails marks them failed again).",
        markup=False,
    )
