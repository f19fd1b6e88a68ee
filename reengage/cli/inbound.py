"""``reengage inbound``: what the inbound listener and the webhook kept without acting on."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from reengage.cli.app import _store, app, out

inbound_app = typer.Typer(
    help="Inbound mail and webhook events that named no mail of ours.", no_args_is_help=True
)
app.add_typer(inbound_app, name="inbound")

_REASONS = {
    "no_message": "names no mail of ours",
    "other_address": "not the address we mailed",
    "bad_signature": "unsigned or forged",
    "unreadable": "could not be read",
}


@inbound_app.command("unmatched")
def unmatched(
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="How many to show.")] = 50,
) -> None:
    """Bounces, complaints, unsubscribes and replies kept for review, newest first: they
    suppressed nobody and moved no one up a call list."""
    store = _store()
    try:
        rows, total = store.responses.unmatched(limit)
    finally:
        store.close()
    if not rows:
        out.print("Nothing unmatched: every bounce, complaint and reply was about our mail.")
        return
    if total > len(rows):  # more are kept than shown: say so, never a count that looks whole
        title = f"the newest {len(rows)} of {total} unmatched (raise --limit for more)"
    else:
        title = f"{total} unmatched"
    table = Table(title=title, expand=False)
    for column in ("when (UTC)", "what", "why", "from / addresses"):
        table.add_column(column, overflow="fold")
    for row in rows:
        who = "\n".join(p for p in (row.sender, row.addresses) if p)
        if row.subject:
            who += f"\n{row.subject[:60]}"
        if row.message_id is not None:  # which of our mails it named
            who += f"\nabout message {row.message_id}"
        if row.detail:
            who += f"\n{row.detail[:120]}"
        table.add_row(
            f"{row.received_at:%Y-%m-%d %H:%M}",
            f"{row.kind}\n({row.source})",
            _REASONS.get(row.reason, row.reason),
            who or "-",
        )
    out.print(table)
