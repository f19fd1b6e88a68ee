"""``reengage inbound``: what the inbound listener and the webhook kept without acting on."""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated

import typer
from rich.table import Table

from reengage.cli.app import _settings, _store, _workspace, app, out

inbound_app = typer.Typer(
    help="Inbound mail and webhook events that named no mail of ours.", no_args_is_help=True
)
app.add_typer(inbound_app, name="inbound")

_REASONS = {
    "no_message": "names no mail of ours",
    "other_address": "not the address we mailed",
    "bad_signature": "unsigned or forged",
    "not_verp": "not at bounce address",  # see README Security: where a report acts
    "unverified_complaint": "unproven complaint",
    "unreadable": "could not be read",
    "too_large": "too large to read (left in the mailbox)",
}


@inbound_app.command("poll")
def poll() -> None:
    """Read the inbound mailbox (REENGAGE_INBOUND_IMAP_URL or _POP3_URL) once: record each
    mail as the SMTP listener would, then move, flag or delete it. For cron; `reengage run`
    does it every REENGAGE_INBOUND_MAILBOX_POLL_SECONDS."""
    from reengage.authoring import CampaignLibrary
    from reengage.inbound import InboundHandler
    from reengage.mailbox_poll import poller_from_settings
    from reengage.responses import Policy
    from reengage.timeutil import utcnow

    settings = _settings()
    if settings.inbound_imap_url is None and settings.inbound_pop3_url is None:
        out.print(
            "no mailbox to read: set REENGAGE_INBOUND_IMAP_URL (or REENGAGE_INBOUND_POP3_URL)",
            markup=False,
        )
        raise typer.Exit(2)
    library = CampaignLibrary(_workspace())
    library.reload()  # each campaign's exit_on decides whether a reply ends its sequence

    def exit_on(campaign_id: str) -> Collection[str] | None:
        campaign = library.campaigns.get(campaign_id)
        return campaign.exit_on if campaign else None

    policy = Policy(soft_bounce_limit=settings.soft_bounce_limit, exit_on=exit_on)
    store = _store()
    try:
        handler = InboundHandler.from_settings(store, utcnow, policy, settings)
        poller = poller_from_settings(settings, store, handler.receive, utcnow)
        assert poller is not None  # a URL is set
        report = poller.poll()
    finally:
        store.close()
    out.print(f"{poller.described}: {report.summary()}", markup=False)
    if report.unmarked:
        out.print(
            f"{report.unmarked} mail(s) recorded but left in the mailbox (recognised and "
            f"marked at a later poll): {report.mark_error}",
            markup=False,
        )
    if report.error:
        out.print(f"stopped early: {report.error}; the rest is read at the next poll", markup=False)
    if report.error or report.unmarked:
        raise typer.Exit(1)


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
