"""Never twice: a mail whose fate is uncertain is never sent again by itself.

A server that keeps a mail and then loses the line before its 250 reaches us has the mail;
sending it again would be a duplicate. reengage marks such a send ``unknown``, holds its
enrollment for a person, and lists it in ``reengage sends list``.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa

from reengage import jobs
from reengage.mailer import Outcome, SmtpMailer
from reengage.models import Customer
from reengage.store import Store
from tests.integration.smtp_sink import Sink, running_sink
from tests.integration.test_chaos import ENROLLMENTS, MESSAGES
from tests.integration.test_cli import cli
from tests.integration.test_sending import ROOT, run_days, setup
from tests.integration.test_worker import on_the_wire


def note(to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@acme.example", to, "hi"
    msg.set_content("hello")
    return msg


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    with running_sink() as running:
        yield running


def test_the_mailer_tells_a_line_lost_before_the_mail_from_one_lost_after(
    sink: tuple[Sink, int],
) -> None:
    handler, port = sink

    async def one() -> Outcome:
        mailer = SmtpMailer("127.0.0.1", port)
        result = await mailer.send(
            note("a@b.example"), sender="s@acme.example", recipient="a@b.example"
        )
        await mailer.close()
        return result.outcome

    handler.drop_next = 1  # lost at RCPT: nothing handed over, safe to try again
    assert asyncio.run(one()) is Outcome.TRANSIENT
    assert handler.received == []
    handler.keep_then_drop = 1  # kept, then lost before the 250: it arrived
    assert asyncio.run(one()) is Outcome.UNKNOWN
    assert len(handler.received) == 1
    handler.script = ["451 busy"]  # the server said no: safe to try again
    assert asyncio.run(one()) is Outcome.TRANSIENT
    assert asyncio.run(one()) is Outcome.SENT
    assert len(handler.received) == 2


def test_a_lost_250_never_sends_a_mail_twice_and_a_person_settles_it(
    store: Store, tmp_path: Path, sink: tuple[Sink, int], database_url: str
) -> None:
    handler, port = sink
    rows = "".join(f"c{i},u{i}@example.com,U{i}\n" for i in range(20))
    service = setup(store, tmp_path, port, "customer_id,email,first_name\n" + rows)
    handler.keep_then_drop = 6  # six of the first mails are kept, their replies lost
    run_days(service, 21, step_hours=6)
    per_customer = Counter((m["to"][0], str(m["message"]["Subject"])) for m in handler.received)
    assert max(per_customer.values()) == 1, "a customer got the same mail twice"
    counts = store.sending.message_counts()
    assert counts["unknown"] == 6
    held = store.sending.held_messages(["unknown"])
    assert len(held) == 6
    assert all("connection lost after the message went out" in (h.reason or "") for h in held)
    # The twenty first mails all arrived, once; the fourteen sure ones went on to step two.
    firsts = [m for m in handler.received if str(m["message"]["Subject"]).startswith("Hello")]
    assert len(firsts) == 20
    assert counts["sent"] == 20 - 6 + 14

    # A person checks the provider's log and settles them: three arrived, one did not (send
    # it again), two are better never sent. Every enrollment moves on.
    env = {
        "REENGAGE_DATABASE_URL": database_url,
        "REENGAGE_CAMPAIGNS_DIR": str(tmp_path / "campaigns"),
        "REENGAGE_TEMPLATES_DIR": str(ROOT / "templates"),
        "REENGAGE_NOW": service.clock_state["now"].isoformat(),  # type: ignore[attr-defined]
    }
    listed = cli("sends", "list", "--status", "unknown", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "sends resolve" in listed.stdout
    assert "6 mail(s) to settle" in listed.stdout
    unknown = cli("sends", "unknown", cwd=tmp_path, env=env)  # the same list, by its name
    assert unknown.returncode == 0, unknown.stderr
    assert unknown.stdout == listed.stdout
    some = cli("sends", "list", "--limit", "2", cwd=tmp_path, env=env)
    assert "the newest 2 of 6 mails to settle" in some.stdout, some.stdout
    shown = cli("customers", "show", held[0].customer, cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert re.search(rf"{held[0].message_id}\s*│\s*lapsed/first\s*│\s*unknown", shown.stdout)
    assert re.search(r"lapsed\s*│\s*attention", shown.stdout), shown.stdout
    ids = sorted(h.message_id for h in held)
    said = [
        cli("sends", "resolve", "sent", *map(str, ids[:3]), cwd=tmp_path, env=env),
        cli("sends", "resolve", "resend", str(ids[3]), cwd=tmp_path, env=env),
        cli("sends", "resolve", "skip", "--all", "--status", "unknown", cwd=tmp_path, env=env),
    ]
    assert [r.returncode for r in said] == [0, 0, 0], [r.stderr for r in said]
    assert "3 mail(s) marked sent" in said[0].stdout
    assert "1 mail(s) queued to be sent again" in said[1].stdout
    assert "2 mail(s) skipped" in said[2].stdout
    again = cli("sends", "resolve", "skip", "--all", cwd=tmp_path, env=env)
    assert "Nothing to settle" in again.stdout
    # An id settled already, or mistyped, is an error naming it, not a silent success.
    mistyped = cli("sends", "resolve", "sent", str(ids[0]), "999999", cwd=tmp_path, env=env)
    assert mistyped.returncode != 0
    assert f"{ids[0]}, 999999" in mistyped.stderr, mistyped.stderr
    before = len(handler.received)
    run_days(service, 14, step_hours=6)
    after = Counter((m["to"][0], str(m["message"]["Subject"])) for m in handler.received)
    # Only the mail the person chose to send again went out twice (here the sink had kept
    # it after all: the person's call); every sequence went on to "A tip" once.
    resent = next(h.email for h in held if h.message_id == ids[3])
    twice = [who for who, times in after.items() if times > 1]
    assert len(twice) == 1 and twice[0][0] == resent, twice
    assert len(handler.received) == before + 1 + 6
    assert store.sending.message_counts() == {"sent": 20 + 20 - 2, "skipped": 2}


def test_a_send_that_outlives_its_lease_still_moves_its_enrollment_on(
    store: Store, tmp_path: Path
) -> None:
    # A slow server: the send outlasts its lease, the lease clean-up marks it unknown, and
    # then the 250 arrives after all. The enrollment must go on to its next step.
    with running_sink(delay=0.6) as (handler, port):
        service = setup(
            store, tmp_path, port, "customer_id,email,first_name\nc1,bo@example.com,Bo\n"
        )
        clock = service.clock_state  # type: ignore[attr-defined]
        service.lease = timedelta(seconds=1)

        async def slow_pass() -> None:
            service.reload()
            service.detect()
            while not handler.received or store.sending.message_counts().get("sending"):
                sending = asyncio.ensure_future(service.dispatch())
                while not sending.done():
                    # Meanwhile another worker's clean-up sees the lease run out.
                    await asyncio.sleep(0.2)
                    jobs.expire_leases(store, clock["now"] + timedelta(seconds=5))
                await sending
                clock["now"] += timedelta(hours=6)
            await service.mailer.close()

        asyncio.run(slow_pass())
        assert store.sending.message_counts() == {"sent": 1}
        run_days(service, 10, step_hours=6)
    subjects = [str(m["message"]["Subject"]) for m in handler.received]
    assert subjects == ["Hello Bo", "A tip"]  # the sequence went on, each mail once


def test_health_says_degraded_and_metrics_count_mails_waiting_for_a_person(
    store: Store, tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    import httpx

    from reengage.web import create_app
    from tests.integration.web_server import running_app

    handler, port = sink
    service = setup(store, tmp_path, port, "customer_id,email,first_name\nc1,bo@example.com,Bo\n")
    with running_app(create_app(store)) as base:
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
        handler.keep_then_drop = 1
        run_days(service, 2)
        # The daemon keeps the gauge current by itself: no /healthz request in between.
        scraped = httpx.get(f"{base}/metrics").text
        assert "reengage_unknown_messages 1.0" in scraped
        health = httpx.get(f"{base}/healthz")
    assert health.status_code == 200
    assert health.json()["ok"] is False
    assert health.json()["status"] == "degraded"
    assert health.json()["unknown_sends"] == "1"
    assert "reengage sends list" in health.json()["attention"]


def test_two_passes_at_once_never_enroll_a_customer_twice_in_a_campaign(store: Store) -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from reengage.ingest import Kind, import_items
    from reengage.store.sending import NewEnrollment

    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    items = [{"customer_id": "c1", "email": "a@example.com"}]
    assert import_items(store, Kind.CUSTOMERS, items, now=now, zone=ZoneInfo("UTC")).ok
    cid = store.customers.customer_ids(["c1"])["c1"]
    one = NewEnrollment(cid, "habit", False, "first", now)
    # Two detection passes decided the same thing (a lock ran out mid-pass): one row runs.
    store.sending.enroll([one], now)
    store.sending.enroll([one, NewEnrollment(cid, "other", False, "first", now)], now)
    history = store.sending.enrollment_history([cid], now - timedelta(days=1))
    assert sorted((campaign, status) for _, campaign, status, _ in history) == [
        ("habit", "active"),
        ("other", "active"),
    ]


def test_a_server_refusing_the_mail_itself_suppresses_nobody(
    store: Store, tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    # 552 to DATA: the mail was too large (or 554: its content) — nothing about the address.
    handler, port = sink
    handler.script = ["552 Error: Too much mail data"]
    service = setup(store, tmp_path, port, "customer_id,email,first_name\nc1,bo@example.com,Bo\n")
    run_days(service, 2)
    assert not store.sending.is_suppressed("bo@example.com")
    [held] = store.sending.held_messages(["failed"])
    assert "refused this mail: 552" in (held.reason or "")
    assert handler.received == []


@pytest.mark.parametrize(
    ("reply", "suppressed"),
    [
        ("550 5.1.1 <bo@example.com>: no such user here", True),
        ("550 5.2.1 mailbox disabled", True),
        ("554 5.7.1 message content rejected as spam", False),
        ("550 5.1.10 recipient address has null MX", True),
        ("550 5.1.8 bad sender's system address", False),
        ("550 rejected", False),
    ],
)
def test_a_server_that_names_the_mailbox_after_data_bounces_the_address(
    store: Store, tmp_path: Path, sink: tuple[Sink, int], reply: str, suppressed: bool
) -> None:
    """Servers that check recipients only after DATA say "no such mailbox" there, with an
    enhanced status code (RFC 3463: 5.1.1, 5.2.1…): the address bounces and is suppressed,
    as a 5xx to RCPT would. Any other 5xx to DATA is about this mail and suppresses nobody."""
    handler, port = sink
    handler.script = [reply]
    service = setup(store, tmp_path, port, "customer_id,email,first_name\nc1,bo@example.com,Bo\n")
    run_days(service, 2)
    assert store.sending.is_suppressed("bo@example.com") is suppressed
    assert store.sending.message_counts() == ({"bounced": 1} if suppressed else {"failed": 1})
    assert handler.received == []


def test_a_pass_longer_than_its_lease_keeps_it_from_other_workers(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from reengage.models import JobLock

    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    clock = {"now": start}
    release, running = threading.Event(), threading.Event()

    joined: list[bool] = []

    def slow_pass(*_: object, start: bool = True, **__: object) -> jobs.EnrollReport:
        if not start:  # a worker that only joins a pass under way (none is, here)
            joined.append(True)
            return jobs.EnrollReport(skipped="no pass under way")
        running.set()  # a million customers, a bad plan
        release.wait(30)
        return jobs.EnrollReport()

    monkeypatch.setattr(jobs, "detect_and_enroll", slow_pass)
    (tmp_path / "campaigns").mkdir()
    from reengage.compose import Workspace
    from reengage.config import load_settings
    from reengage.scheduler import Service

    ws = Workspace.from_settings(
        load_settings(
            env_file=None, campaigns_dir=tmp_path / "campaigns", templates_dir=ROOT / "templates"
        )
    )

    def worker() -> Service:
        mailer = SmtpMailer("127.0.0.1", 9)
        return Service(store, mailer, ws, clock=lambda: clock["now"], detect_every_s=8)

    first, second = worker(), worker()
    passing = threading.Thread(target=first.detect)
    passing.start()
    assert running.wait(10)
    locks: sa.Table = JobLock.__table__  # type: ignore[attr-defined]

    def held_until() -> datetime:
        with store.engine.connect() as conn:
            found = conn.execute(sa.select(locks.c.locked_until)).scalar_one()
        return found if found.tzinfo else found.replace(tzinfo=UTC)

    # The pass outlives its five-second lease; the worker renews it while it runs.
    clock["now"] = start + timedelta(seconds=10)
    deadline = threading.Event()
    for _ in range(100):
        if held_until() > clock["now"]:
            break
        deadline.wait(0.1)
    assert held_until() > clock["now"], "the lease was not renewed during the pass"
    assert second.detect().skipped  # so no other worker starts a pass meanwhile
    assert joined == [True]  # it may only join the one under way
    release.set()
    passing.join(10)


def test_a_sequence_that_ended_while_its_mail_was_on_the_wire_stays_ended(
    database_url: str, tmp_path: Path
) -> None:
    """A call ends a customer's sequence and starts them on it afresh while a dead worker's
    mail to them is still ``sending``: settling that mail as unknown must not revive the
    ended sequence (two running in one campaign), nor stop every other stale mail from
    being settled."""
    from reengage.store.sending import NewEnrollment
    from tests.integration.test_worker import LEASE, NOW

    store, held = on_the_wire(database_url, tmp_path, 3)
    (first, _), (second, _) = held[0], held[1]
    store.sending.end_enrollment(first.enrollment_id, "call", NOW)
    assert store.sending.enroll(
        [NewEnrollment(first.customer_id, first.campaign_id, False, "first", NOW)], NOW
    )
    later = NOW + LEASE * 2
    assert store.sending.expire_leases(later) == 3  # every stale mail, the ended one's too
    assert store.sending.message_counts()["unknown"] == 3
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(ENROLLMENTS.c.id, ENROLLMENTS.c.status).where(
                ENROLLMENTS.c.customer_id.in_([first.customer_id, second.customer_id])
            )
        ).all()
    status = dict(rows)
    assert status[first.enrollment_id] == "exited"
    assert status[second.enrollment_id] == "attention"
    assert sorted(status.values()) == ["active", "attention", "exited"]
    store.close()


def test_a_customer_who_buys_again_while_their_send_waits_for_a_person_leaves_the_sequence(
    database_url: str, tmp_path: Path
) -> None:
    """``exit_on: [activity]`` ends a sequence held for a person (``attention``) the same way
    as a running one: a customer who ordered again is not mailed the rest once the uncertain
    send is settled. One who did nothing stays held."""
    from zoneinfo import ZoneInfo

    from reengage.ingest import Kind, import_items
    from tests.integration.test_worker import LEASE, NOW

    store, held = on_the_wire(database_url, tmp_path, 2)
    (buyer, _), (quiet, _) = held
    later = NOW + LEASE * 2
    assert store.sending.expire_leases(later) == 2
    order = {"customer_id": "c0", "occurred_at": later.isoformat(), "amount": 20}
    report = import_items(store, Kind.ACTIVITIES, [order], now=later, zone=ZoneInfo("UTC"))
    assert report.ok, report.rejected
    assert store.sending.exit_on_activity([buyer.campaign_id], later) == 1
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(ENROLLMENTS.c.id, ENROLLMENTS.c.status, ENROLLMENTS.c.exit_reason)
        ).all()
    ended = {eid: (status, reason) for eid, status, reason in rows}
    assert ended[buyer.enrollment_id] == ("exited", "reactivated")
    assert ended[quiet.enrollment_id] == ("attention", "send_unknown")
    store.close()


def test_a_customer_who_paused_is_not_mailed_when_their_held_mail_is_settled(
    database_url: str, tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    """A customer pauses mail (the preferences page) while their sequence waits for a person
    to settle an uncertain send; settling it must not start mailing them again. Nor is one
    whose pause was recorded any other way (an import) mailed while it lasts."""
    from reengage import responses
    from reengage.campaigns import parse_campaign
    from reengage.compose import Workspace
    from reengage.config import load_settings
    from reengage.settle import Decision, settle
    from tests.integration.test_worker import CAMPAIGN, LEASE, NOW

    handler, port = sink
    store, held = on_the_wire(database_url, tmp_path, 2)
    store.sending.expire_leases(NOW + LEASE * 2)  # the worker died: unknown, sequences held
    (paused, started), (other, _) = held
    ref = store.responses.message(started.token or "")
    assert ref is not None
    responses.pause(store, ref, NOW + LEASE * 3)
    with store.engine.begin() as conn:  # the other's pause came with an import
        conn.execute(
            CUSTOMERS.update()
            .where(CUSTOMERS.c.id == other.customer_id)
            .values(paused_until=NOW + timedelta(days=30))
        )
    two_steps = CAMPAIGN + (
        "  - {key: second, after: 1d, subject: Again, template: tips/tip-2.html.j2}\n"
    )
    campaign, problems = parse_campaign(two_steps, "always.yaml")
    assert campaign is not None, problems
    settle(store, {campaign.id: campaign}, Decision.SKIP, NOW + LEASE * 4)
    later = NOW + timedelta(days=2)
    ws = Workspace.from_settings(
        load_settings(
            env_file=None,
            campaigns_dir=tmp_path / "campaigns",
            templates_dir=ROOT / "templates",
            secret_key="p" * 40,
            max_emails_per_week=0,
        )
    )

    async def dispatch() -> jobs.DispatchReport:
        mailer = SmtpMailer("127.0.0.1", port)
        report = await jobs.dispatch_due(store, mailer, ws, {campaign.id: campaign}, later)
        await mailer.close()
        return report

    report = asyncio.run(dispatch())
    assert handler.received == []  # neither is mailed
    assert report.results["paused"] == 1  # the imported pause ends its sequence at send time
    with store.engine.connect() as conn:
        status = dict(
            conn.execute(sa.select(ENROLLMENTS.c.customer_id, ENROLLMENTS.c.status)).all()
        )
    assert status == {paused.customer_id: "exited", other.customer_id: "exited"}
    store.close()


CUSTOMERS: sa.Table = Customer.__table__  # type: ignore[attr-defined]


def test_resending_the_mail_of_a_sequence_that_ended_skips_it_and_says_so(
    database_url: str, tmp_path: Path
) -> None:
    """`sends resolve resend` for a customer who paused meanwhile sends nothing, and the mail
    is settled (skipped, with why), not left waiting to be retried for ever."""
    from reengage import responses
    from reengage.campaigns import parse_campaign
    from reengage.settle import Decision, settle
    from tests.integration.test_worker import CAMPAIGN, LEASE, NOW

    store, held = on_the_wire(database_url, tmp_path, 2)
    store.sending.expire_leases(NOW + LEASE * 2)
    (_, paused), (_, going) = held
    ref = store.responses.message(paused.token or "")
    assert ref is not None
    responses.pause(store, ref, NOW + LEASE * 3)
    campaign, _ = parse_campaign(CAMPAIGN, "always.yaml")
    assert campaign is not None
    done = settle(store, {campaign.id: campaign}, Decision.RESEND, NOW + LEASE * 4)
    assert done["queued to be sent again"] == 1
    assert sum(v for k, v in done.items() if k.startswith("skipped")) == 1
    with store.engine.connect() as conn:
        status = dict(conn.execute(sa.select(MESSAGES.c.id, MESSAGES.c.status)).all())
    assert status[paused.message_id] == "skipped"
    assert status[going.message_id] == "retry"
    store.close()
