"""``reengage customers``: one customer's file and standing, and the customers who lapsed."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from reengage.cli.app import _settings, _store, customers_app, out
from reengage.errors import InputError
from reengage.timeutil import UNKNOWN_YEAR, as_utc, utcnow


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    return as_utc(moment).astimezone(zone)


@customers_app.command("show")
def customers_show(customer_id: Annotated[str, typer.Argument(help="external id")]) -> None:
    """One customer: their file, their rhythm, where they stand today and why."""
    from reengage import scoring
    from reengage.i18n import days
    from reengage.store.detection import display_name

    store = _store()
    try:
        found = store.customers.get_customer(customer_id)
        if found is None:
            raise InputError(f"no customer {customer_id!r}; check the id in your import file")
        customer, _ = found
        assert customer.id is not None  # a stored customer has an id
        activities = store.customers.activities_of(customer.id)
        mine = scoring.assess_customers(store, utcnow(), customer_ids=[customer.id]).get(
            customer.id
        )
        enrollments, messages = store.sending.customer_sending(customer.id)
    finally:
        store.close()
    table = Table(show_header=False, title=customer.external_id, title_justify="left")
    for label, value in (
        ("name", display_name(customer.first_name, customer.last_name, customer.company)),
        ("email", customer.email),
        ("phone", customer.phone),
        ("segment", customer.segment),
        ("rep", customer.rep_external_id),
        (
            "decision maker",
            " — ".join(filter(None, (customer.decision_maker, customer.decision_maker_role))),
        ),
        ("interests", ", ".join(customer.interests)),
        (
            "important dates",
            ", ".join(f"{d['label']} {_yearly(d['date'])}" for d in customer.important_dates),
        ),
    ):
        table.add_row(label, value or "—")
    if mine is None:
        table.add_row("standing", "no activity yet")
    else:
        table.add_row("why", mine.why)
        table.add_row("lapse score", f"{mine.lapse_score:.2f} (probability the habit has lapsed)")
        table.add_row(
            "rhythm",
            f"expected gap {days(mine.expected_gap_days)}; silent "
            f"{days(mine.days_silent)} ({mine.lapse_ratio:.1f}×)",
        )
        table.add_row(
            "value",
            f"{mine.value_per_year:,.0f} per year; at risk "
            f"{mine.value_at_risk:,.0f}; priority {mine.priority:,.0f}",
        )
    zone = _settings().zone  # dates as imported: in the business's time zone
    recent = ", ".join(
        f"{_local(a.occurred_at, zone):%Y-%m-%d} {a.kind}"
        + (f" {a.amount:.2f}" if a.amount is not None else "")
        for a in activities[-5:]
    )
    table.add_row("recent", recent or "—")
    out.print(table)
    if enrollments:
        campaigns = Table(title="Campaigns", title_justify="left")
        for column in ("campaign", "status", "entered", "next step", "ended because"):
            campaigns.add_column(column, overflow="fold")
        for e in enrollments:
            campaigns.add_row(
                e.campaign_id,
                e.status,
                f"{e.enrolled_at:%Y-%m-%d}",
                f"{e.next_step_key} {e.next_due_at:%Y-%m-%d %H:%M}"
                if e.next_step_key and e.next_due_at
                else "—",
                e.exit_reason or "—",
            )
        out.print(campaigns)
    if messages:
        mails = Table(title="Mails", title_justify="left")
        for column in ("id", "campaign/step", "status", "when (UTC)", "server or reason"):
            mails.add_column(column, overflow="fold")
        for m in messages:
            mails.add_row(
                str(m.message_id),
                f"{m.campaign_id}/{m.step_key}",
                m.status,
                f"{(m.sent_at or m.created_at):%Y-%m-%d %H:%M}",
                (m.detail or "—")[:120],
            )
        out.print(mails)
        if any(m.status in ("failed", "unknown") for m in messages):
            out.print(
                "A failed or unknown mail waits for a person: reengage sends resolve "
                "sent|resend|skip ID",
                markup=False,
            )


@customers_app.command("lapsed")
def customers_lapsed(
    min_score: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Lowest lapse score to list.")
    ] = 0.5,
    by: Annotated[
        str,
        typer.Option(
            help="Order by 'score' (worst first) or 'priority' (most worth a call first)."
        ),
    ] = "score",
    limit: Annotated[int, typer.Option(min=1, help="How many to show.")] = 25,
) -> None:
    """Customers whose habit has probably lapsed, or whose business is shrinking."""
    from reengage import scoring

    if by not in ("score", "priority"):
        raise typer.BadParameter("use 'score' or 'priority'", param_hint="--by")
    store = _store()
    try:
        found = scoring.lapsed(store, utcnow(), min_score=min_score, by=by)
    finally:
        store.close()
    table = Table(title=f"{len(found)} customers at lapse score ≥ {min_score:.2f} or shrinking")
    for column in ("customer", "score", "silent", "usual gap", "value at risk", "why"):
        table.add_column(column, justify="left" if column in ("customer", "why") else "right")
    for a in found[:limit]:
        table.add_row(
            f"{a.customer_id} {a.profile.name}".strip(),
            f"{a.lapse_score:.2f}",
            f"{a.days_silent:.0f} d",
            f"{a.expected_gap_days:.0f} d",
            f"{a.value_at_risk:,.0f}",
            a.why,
        )
    out.print(table)
    if len(found) > limit:
        out.print(f"… and {len(found) - limit} more (--limit, or `reengage score --out`)")


def _yearly(text: str) -> str:
    # A date stored without its year (a birthday given as 04-12) shows as "12 Apr, yearly".
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return text
    return f"{day:%d %b}, yearly" if day.year == UNKNOWN_YEAR else text
