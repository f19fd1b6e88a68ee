"""Working days on real databases (SQLite and PostgreSQL) with a real SMTP server: the
daemon's digest ticks send nothing on a weekend or a holiday, and what fell due then — a
"call again" on a Sunday, a campaign's call step on a Saturday — is on Monday's list.

The clock is pinned: the week of Friday 27 November 2026, Dana in Berlin, Sam in New York.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from reengage.digest import CallContext, CallReport, build_lists, record_outcome, send_digests
from reengage.dispatch import dispatch_due
from reengage.mailer import SmtpMailer
from reengage.models import NextStep, Reached, StopReason, WorthIt
from reengage.store import Store
from reengage.store.sending import NewEnrollment
from reengage.workdays import WorkingDays, parse_skip_dates
from tests.integration import digest_world as w
from tests.integration.smtp_sink import Sink
from tests.integration.test_digest import campaigns, cid, sink, world

FRIDAY = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)  # 07:30 in Berlin
SUNDAY = date(2026, 11, 29)
MONDAY = date(2026, 11, 30)


__all__ = ["sink", "world"]  # the digest tests' fixtures, imported for the tests below


def tick_hourly(
    store: Store,
    port: int,
    start: datetime,
    hours: int,
    days: WorkingDays | None = None,
) -> list[tuple[datetime, dict[str, int]]]:
    """The daemon's digest pass every hour from ``start``: what each tick did."""
    ws, cfg = w.workspace(Path("."), port)
    if days is not None:
        cfg = dataclasses.replace(cfg, days=days)

    async def go() -> list[tuple[datetime, dict[str, int]]]:
        mailer = SmtpMailer.from_settings(w.settings(port))
        done = []
        try:
            for hour in range(hours):
                now = start + timedelta(hours=hour)
                report = await send_digests(store, mailer, ws, cfg, now, reps=["R1"])
                if report.results:
                    done.append((now, dict(report.results)))
        finally:
            await mailer.close()
        return done

    return asyncio.run(go())


def dana_mails(handler: Sink) -> list[str]:
    return [
        str(m["message"]["Subject"]) for m in handler.received if m["to"] == ["dana@acme.example"]
    ]


def test_no_digest_on_saturday_or_sunday_and_mondays_comes_in_the_morning(
    world: Store, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    # Friday 00:00 UTC to Tuesday 00:00 UTC, every hour: Friday's and Monday's mornings.
    start = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    done = tick_hourly(world, port, start, 24 * 4)
    berlin = [
        (at.astimezone(w.ZoneInfo("Europe/Berlin")).strftime("%a %H:%M"), r) for at, r in done
    ]
    assert berlin == [
        ("Fri 07:00", {"sent": 1}),
        ("Mon 07:00", {"sent": 1}),
    ]
    assert [s.rsplit(", ", 1)[1] for s in dana_mails(handler)] == ["Fri 27 Nov", "Mon 30 Nov"]
    assert set(world.calls.digests_on(SUNDAY)) == set()  # not even an "empty" row


def test_a_holiday_then_the_weekend_sends_nothing_until_the_monday_after(
    world: Store, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    days = WorkingDays(skip=parse_skip_dates("2026-11-27"))  # the Friday is a holiday
    done = tick_hourly(world, port, datetime(2026, 11, 27, 0, 0, tzinfo=UTC), 24 * 4, days)
    assert [at.date() for at, _ in done] == [MONDAY]
    assert [s.rsplit(", ", 1)[1] for s in dana_mails(handler)] == ["Mon 30 Nov"]


def test_digest_send_by_hand_on_a_sunday_sends_nothing_and_says_why(
    world: Store, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    ws, cfg = w.workspace(Path("."), port)
    sunday = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)

    async def go() -> dict[str, int]:
        mailer = SmtpMailer.from_settings(w.settings(port))
        try:
            report = await send_digests(world, mailer, ws, cfg, sunday, anytime=True)
            return dict(report.results)
        finally:
            await mailer.close()

    assert asyncio.run(go()) == {"day_off": 2}  # Dana and Sam both have Sunday off
    assert handler.received == []


def test_a_call_again_on_sunday_is_on_mondays_digest(world: Store, sink: tuple[Sink, int]) -> None:
    handler, port = sink
    bakery = cid(world, "bakery")
    # Friday: Dana reaches the bakery, who ask to be called again on Sunday.
    ctx = CallContext(bakery, "R1", campaigns(), "what-we-changed", "web")
    asked = CallReport(
        Reached.DECISION_MAKER,
        WorthIt.YES,
        NextStep.CALL_AGAIN,
        reason=StopReason.PRICE,
        call_again_on=SUNDAY,
    )
    acted = record_outcome(world, ctx, asked, FRIDAY + timedelta(hours=2), today=FRIDAY.date())
    assert acted.call_again_on == MONDAY
    assert acted.summary()[-2:] == [
        "They are on your list again on Monday, November 30, 2026.",
        "(Sunday, November 29, 2026 is not a working day.)",
    ]
    # Not on Sunday's list (were one looked at), on Monday's with the rep's own reason.
    sunday_list = build_lists(world, FRIDAY + timedelta(days=2), w.policy(), reps=["R1"])[0]
    assert "bakery" not in [i.customer.external_id for i in sunday_list.items]

    # From Friday evening (Friday's window is over) to Monday noon.
    done = tick_hourly(world, port, FRIDAY + timedelta(hours=9), 24 * 2 + 21)
    assert [at.date() for at, _ in done] == [MONDAY]
    monday = build_lists(world, FRIDAY + timedelta(days=3), w.policy(), reps=["R1"], day=MONDAY)
    card = next(i for i in monday[0].items if i.customer.external_id == "bakery")
    assert card.why[0].startswith(
        "You asked to call again on Sun 29 Nov, a day off, so today. You set this call on 27 Nov."
    )
    mail = handler.received[-1]["message"]
    assert str(mail["Subject"]).endswith("Mon 30 Nov")
    assert "You asked to call again on Sun 29 Nov" in str(mail.get_body(("plain",)).get_content())


def test_a_campaign_call_step_due_on_saturday_is_on_mondays_digest(
    world: Store, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    wholesale = cid(world, "wholesale")
    # Friday: Dana spoke to them (so they are off the list for 14 days) ...
    ctx = CallContext(wholesale, "R1", campaigns(), "what-we-changed", "web")
    spoke = CallReport(
        Reached.DECISION_MAKER, WorthIt.YES, NextStep.NOTHING, reason=StopReason.COMPETITOR
    )
    record_outcome(world, ctx, spoke, FRIDAY + timedelta(hours=2), today=FRIDAY.date())
    # ... and on Saturday the declining check-in campaign's call step falls due.
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    world.sending.enroll(
        [NewEnrollment(wholesale, "declining-check-in", False, "call", saturday)], saturday
    )
    ws, _ = w.workspace(Path("."), port)

    async def dispatch() -> dict[str, int]:
        mailer = SmtpMailer.from_settings(w.settings(port))
        try:
            report = await dispatch_due(world, mailer, ws, campaigns(), saturday)
            return dict(report.results)
        finally:
            await mailer.close()

    assert asyncio.run(dispatch()) == {"call_listed": 1}
    done = tick_hourly(world, port, saturday, 24 * 2 + 6)
    assert [at.date() for at, _ in done] == [MONDAY]
    mail = handler.received[-1]["message"]
    assert str(mail["Subject"]).endswith("Mon 30 Nov")
    text = str(mail.get_body(("plain",)).get_content())
    assert (
        "Orders shrinking: ask about volume, price or a competitor (campaign declining-check-in)"
        in text
    )
