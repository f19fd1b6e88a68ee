"""The reps' morning: who is on the list and why, the digest mail, and what outcomes do.

Real databases (SQLite and PostgreSQL), a real SMTP server (aiosmtpd on loopback), data
through the real importer, sends and responses through the real store functions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reengage import authoring
from reengage.campaigns import Campaign
from reengage.digest import (
    Acted,
    CallContext,
    CallList,
    CallReport,
    OutcomeError,
    build_lists,
    causes,
    compose_digest,
    record_outcome,
    send_digests,
)
from reengage.ingest import Kind, import_items
from reengage.mailer import SmtpMailer
from reengage.message import wire
from reengage.models import CauseScope, Digest, NextStep, Reached, Rep, StopReason, WorthIt
from reengage.scheduler import Service
from reengage.store import Store
from reengage.store.sending import NewEnrollment
from reengage.workdays import WorkingDays
from tests.integration import digest_world as w
from tests.integration.smtp_sink import Sink, running_sink
from tests.unit.test_time_policy import ZONES, moments


@pytest.fixture
def world(store: Store) -> Store:
    w.fill(store)
    return store


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    with running_sink() as running:
        yield running


def dana(store: Store, day: date | None = None, size: int = 10) -> CallList:
    return build_lists(store, w.NOW, w.policy(size), reps=["R1"], day=day)[0]


def names(call_list: CallList) -> list[str]:
    return [item.customer.external_id for item in call_list.items]


def cid(store: Store, external_id: str) -> int:
    return store.customers.customer_ids([external_id])[external_id]


def campaigns() -> dict[str, Campaign]:
    ws, _ = w.workspace(Path("."))
    library = authoring.CampaignLibrary(ws)
    library.reload()
    return dict(library.campaigns)


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None
    return str(part.get_content())


def log_call(store: Store, external_id: str, outcome: CallReport, *, days_ago: float = 0) -> Acted:
    ctx = CallContext(cid(store, external_id), "R1", campaigns(), "what-we-changed", "cli")
    when = w.NOW - timedelta(days=days_ago)
    return record_outcome(store, ctx, outcome, when, today=when.date())


# -- the list ------------------------------------------------------------------------------------


def test_a_reply_comes_first_then_the_most_value_at_risk_and_never_the_wrong_people(
    world: Store,
) -> None:
    listed = dana(world)
    # Rita replied (a commitment); then by value at risk × how surely the habit lapsed.
    assert names(listed) == ["replied", "wholesale", "bakery", "hostile"]
    assert "dnc" not in names(listed)  # marked do-not-contact
    assert "happy" not in names(listed)  # still buying on rhythm
    priorities = [item.priority for item in listed.items[1:]]
    assert priorities == sorted(priorities, reverse=True)
    short = dana(world, size=2)
    assert names(short) == ["replied", "wholesale"] and short.more == 2
    sam = build_lists(world, w.NOW, w.policy(), reps=["R2"])[0]
    assert names(sam) == ["ny"]


def test_each_card_says_whom_to_ask_why_now_what_to_ask_and_what_is_coming_up(
    world: Store,
) -> None:
    cards = {item.customer.external_id: item for item in dana(world).items}
    ana = cards["bakery"]
    assert (ana.person.name, ana.person.role, ana.person.phone) == (
        "Maria Li",
        "Owner",
        "+49 170 555 0101",
    )
    assert ana.person.standing == "decision maker"
    assert "Usually orders every 10 days; silent for 60 days" in ana.why[0]
    assert ana.questions[:2] == ["Why did you decide to stop?", "What could we do to win you back?"]
    assert any("Espresso beans 5kg" in q for q in ana.questions)
    assert [str(d) for d in ana.dates] == ["contract anniversary (7 years): Sat 28 Nov, in 5 days"]
    assert ana.interests == ["espresso", "pastry"]
    bo = cards["wholesale"]
    # No decision maker on file: the most senior contact known, not the office manager.
    assert (bo.person.name, bo.person.standing) == ("Kim Chen", "most senior contact known")
    assert any("70% smaller" in line for line in bo.why)
    assert any("smaller" in q and "someone else" in q for q in bo.questions)
    rita = cards["replied"]
    assert rita.why[0].startswith("Replied on 22 Nov")
    assert "lost your catalogue" in rita.replies[0]


def test_what_reengage_did_and_the_last_call_are_on_the_card(world: Store) -> None:
    w.mailed_and_called(world)  # a mail 9 days ago, a call 20 days ago
    card = next(i for i in dana(world).items if i.customer.external_id == "bakery")
    assert [str(line) for line in card.history] == [
        "14 Nov: habit-lapsed-tips · we-miss-you — opened 14 Nov, clicked 14 Nov"
    ]
    assert card.last_call is not None
    assert (
        "spoke to Maria Li" in card.last_call and "stopped over price, systemic" in card.last_call
    )
    assert "spring price rise" in card.last_call
    assert any("Last time they mentioned price" in q for q in card.questions)
    assert any("https://shop.example/espresso" in q for q in card.questions)


def test_someone_called_recently_or_scheduled_for_another_day_is_left_off(world: Store) -> None:
    log_call(
        world,
        "wholesale",
        CallReport(
            Reached.SOMEONE_ELSE, WorthIt.YES, NextStep.NOTHING, reason=StopReason.COMPETITOR
        ),
        days_ago=3,
    )
    later = w.NOW.date() + timedelta(days=4)
    log_call(
        world,
        "bakery",
        CallReport(Reached.NOBODY, WorthIt.YES, NextStep.CALL_AGAIN, call_again_on=later),
        days_ago=0,
    )
    assert names(dana(world)) == ["replied", "hostile"]
    assert "bakery" in names(dana(world, day=later))  # on the day the rep chose
    assert "wholesale" not in names(dana(world, day=later))  # still within 14 days
    assert "wholesale" in names(dana(world, day=w.NOW.date() + timedelta(days=12)))


# -- outcomes ------------------------------------------------------------------------------------


def test_do_not_contact_ends_every_enrollment_and_keeps_them_off_every_list(world: Store) -> None:
    ana = cid(world, "bakery")
    world.sending.enroll(
        [NewEnrollment(ana, "habit-lapsed-tips", False, "we-miss-you", w.NOW)], w.NOW
    )
    acted = log_call(
        world,
        "bakery",
        CallReport(
            Reached.DECISION_MAKER, WorthIt.NO, NextStep.DO_NOT_CONTACT, reason=StopReason.SERVICE
        ),
    )
    assert acted.ended == 1 and acted.do_not_contact
    assert world.sending.enrollment_history([ana], w.NOW - timedelta(days=1)) == [
        (ana, "habit-lapsed-tips", "exited", w.NOW)
    ]
    assert world.customers.contactable([ana], w.NOW) == {}  # no campaign will mail them either
    for days in (1, 30, 400):
        assert "bakery" not in names(dana(world, day=w.NOW.date() + timedelta(days=days)))


def test_follow_up_re_routes_into_the_follow_up_campaign(world: Store) -> None:
    ana = cid(world, "bakery")
    world.sending.enroll(
        [NewEnrollment(ana, "habit-lapsed-tips", False, "we-miss-you", w.NOW)], w.NOW
    )
    acted = log_call(
        world,
        "bakery",
        CallReport(
            Reached.DECISION_MAKER,
            WorthIt.YES,
            NextStep.FOLLOW_UP,
            reason=StopReason.DELIVERY,
            scope=CauseScope.SYSTEMIC,
        ),
    )
    assert acted.enrolled_in == "what-we-changed"
    history = world.sending.enrollment_history([ana], w.NOW - timedelta(days=1))
    assert sorted((c, s) for _, c, s, _ in history) == [
        ("habit-lapsed-tips", "exited"),
        ("what-we-changed", "active"),
    ]


def test_a_rep_offer_ends_only_campaigns_that_exit_on_a_call_outcome(world: Store) -> None:
    ana = cid(world, "bakery")
    world.sending.enroll(
        [NewEnrollment(ana, "habit-lapsed-tips", False, "we-miss-you", w.NOW)], w.NOW
    )
    world.sending.enroll(
        [NewEnrollment(ana, "what-we-changed", False, "what-we-changed", w.NOW)], w.NOW
    )
    log_call(
        world,
        "bakery",
        CallReport(
            Reached.DECISION_MAKER, WorthIt.YES, NextStep.REP_OFFER, reason=StopReason.PRICE
        ),
    )
    status = {
        c: s for _, c, s, _ in world.sending.enrollment_history([ana], w.NOW - timedelta(days=1))
    }
    # habit-lapsed-tips lists call_outcome in exit_on; what-we-changed does not.
    assert status == {"habit-lapsed-tips": "exited", "what-we-changed": "active"}


def test_an_outcome_that_cannot_be_saved_says_which_field_and_changes_nothing(
    world: Store,
) -> None:
    with pytest.raises(OutcomeError, match="call_again_on: choose the day"):
        log_call(world, "bakery", CallReport(Reached.NOBODY, WorthIt.YES, NextStep.CALL_AGAIN))
    with pytest.raises(OutcomeError, match="reason: choose the main reason"):
        log_call(world, "bakery", CallReport(Reached.DECISION_MAKER, WorthIt.YES, NextStep.NOTHING))
    assert world.calls.outcomes_since(None) == []


def test_the_same_digest_link_records_one_outcome(world: Store) -> None:
    ctx = CallContext(
        cid(world, "bakery"),
        "R1",
        campaigns(),
        "what-we-changed",
        "web",
        dedupe_key="digest:R1:1:2026-11-23",
    )
    outcome = CallReport(
        Reached.NOBODY,
        WorthIt.YES,
        NextStep.CALL_AGAIN,
        call_again_on=w.NOW.date() + timedelta(days=2),
    )
    first = record_outcome(world, ctx, outcome, w.NOW, today=w.NOW.date())
    again = record_outcome(world, ctx, outcome, w.NOW + timedelta(minutes=1), today=w.NOW.date())
    assert first.recorded and not again.recorded
    assert "already recorded" in again.summary()[0]
    assert len(world.calls.outcomes_since(None)) == 1
    assert len(world.calls.open_calls()) == 1


def test_causes_put_systemic_ones_first_with_value_lost_and_their_words(world: Store) -> None:
    log_call(
        world,
        "bakery",
        CallReport(
            Reached.DECISION_MAKER,
            WorthIt.LATER,
            NextStep.NOTHING,
            reason=StopReason.PRICE,
            scope=CauseScope.SPECIFIC,
            reason_text="Budget cut",
        ),
    )
    log_call(
        world,
        "wholesale",
        CallReport(
            Reached.SOMEONE_ELSE,
            WorthIt.YES,
            NextStep.FOLLOW_UP,
            reason=StopReason.DELIVERY,
            scope=CauseScope.SYSTEMIC,
            reason_text="Three late deliveries in a row",
        ),
    )
    log_call(world, "hostile", CallReport(Reached.NOBODY, WorthIt.YES, NextStep.NOTHING))
    report = causes(world, None)
    assert (report.calls, report.reached) == (3, 2)
    assert [r.reason for r in report.rows] == ["delivery", "price"]
    delivery = report.rows[0]
    assert (delivery.systemic, delivery.specific) == (1, 0)
    assert delivery.value_lost > 10_000  # the wholesale account's yearly value
    assert "Three late deliveries in a row" in delivery.notes[0]
    assert report.next_steps["follow_up"] == 1


# -- the digest mail -----------------------------------------------------------------------------


def send(
    store: Store,
    port: int,
    *,
    at_hours: float = 0,
    anytime: bool = False,
    reps: list[str] | None = None,
) -> dict[str, int]:
    ws, cfg = w.workspace(Path("."), port)

    async def go() -> dict[str, int]:
        mailer = SmtpMailer.from_settings(w.settings(port))
        try:
            report = await send_digests(
                store,
                mailer,
                ws,
                cfg,
                w.NOW + timedelta(hours=at_hours),
                reps=reps,
                anytime=anytime,
            )
            return dict(report.results)
        finally:
            await mailer.close()

    return asyncio.run(go())


def test_each_rep_gets_one_digest_in_their_own_morning_however_often_it_ticks(
    world: Store, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    assert send(world, port) == {"sent": 1}  # 07:30 in Berlin; 01:30 in New York
    assert send(world, port, at_hours=0.5) == {}
    assert send(world, port, at_hours=2) == {}
    assert [m["to"] for m in handler.received] == [["dana@acme.example"]]
    assert send(world, port, at_hours=6) == {"sent": 1}  # 07:30 in New York
    assert [m["to"] for m in handler.received] == [["dana@acme.example"], ["sam@acme.example"]]
    mail = handler.received[0]["message"]
    assert mail["Subject"] == "4 clients to call today, Mon 23 Nov"
    assert mail["To"] == "Dana Reyes <dana@acme.example>"
    assert send(world, port, at_hours=24) == {"sent": 1}  # Tuesday: Dana's next digest
    # Wednesday: the daemon was down until 15:30 in Berlin (09:30 in New York): Dana's
    # window (07:00-15:00) has passed, so no list for a day that is nearly over; Sam's
    # morning is still in his.
    assert send(world, port, at_hours=24 + 8) == {"sent": 1}
    assert handler.received[-1]["to"] == ["sam@acme.example"]
    assert send(world, port, at_hours=48 + 0.5) == {"sent": 1}  # Dana, Thursday 08:00
    assert handler.received[-1]["to"] == ["dana@acme.example"]


def test_building_the_lists_never_stalls_the_daemons_sending(
    world: Store, sink: tuple[Sink, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Scoring a large customer base takes seconds of CPU and database reads; the daemon's
    # event loop meanwhile carries every in-flight send and /healthz. Here building the
    # lists waits until a ticker on the loop has turned: were the lists built on the loop,
    # the ticker could not turn and building would give up waiting.
    from reengage.digest import sending

    real = sending.build_lists
    building, turned = threading.Event(), threading.Event()
    waited: list[bool] = []

    def waits_for_the_loop(*args: object, **kwargs: object) -> list[CallList]:
        building.set()
        waited.append(turned.wait(timeout=10))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sending, "build_lists", waits_for_the_loop)
    handler, port = sink
    ws, cfg = w.workspace(Path("."), port)

    async def go() -> dict[str, int]:
        mailer = SmtpMailer.from_settings(w.settings(port))

        async def ticker() -> None:
            while True:
                if building.is_set():
                    turned.set()
                await asyncio.sleep(0.01)

        running = asyncio.create_task(ticker())
        try:
            report = await send_digests(world, mailer, ws, cfg, w.NOW, reps=["R1"])
        finally:
            running.cancel()
            await mailer.close()
        return dict(report.results)

    assert asyncio.run(go()) == {"sent": 1}
    assert waited == [True]  # the loop turned while the list was being built
    assert [m["to"] for m in handler.received] == [["dana@acme.example"]]


def test_two_workers_at_once_send_each_rep_exactly_one_digest(
    world: Store, database_url: str, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    other = Store.open(database_url)
    results: list[dict[str, int]] = []
    try:
        start = threading.Barrier(2)

        def worker(store: Store) -> None:
            start.wait()
            results.append(send(store, port, anytime=True))

        threads = [threading.Thread(target=worker, args=(s,)) for s in (world, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.close()
    assert sorted(tuple(m["to"]) for m in handler.received) == [
        ("dana@acme.example",),
        ("sam@acme.example",),
    ]
    assert sum(r.get("sent", 0) for r in results) == 2


def test_a_rep_with_nobody_to_call_gets_no_mail(world: Store, sink: tuple[Sink, int]) -> None:
    handler, port = sink
    import_items(
        world,
        Kind.REPS,
        [{"rep_id": "R3", "email": "new@acme.example", "name": "New"}],
        now=w.NOW,
        zone=ZoneInfo("UTC"),
    )
    assert send(world, port, reps=["R3"]) == {}  # 06:30 UTC: before the digest hour
    assert send(world, port, reps=["R3"], at_hours=1) == {"empty": 1}
    assert send(world, port, reps=["R3"], at_hours=2) == {}
    assert handler.received == []


def test_the_text_part_carries_the_same_facts_as_the_html(world: Store) -> None:
    ws, cfg = w.workspace(Path("."))
    message = compose_digest(ws, cfg, dana(world), w.NOW, "key")
    text = body(message, "plain")
    html = body(message, "html")
    for fact in (
        "Ana's Bakery",
        "Maria Li",
        "+49 170 555 0101",
        "Usually orders every 10 days; silent for 60 days",
        "Why did you decide to stop?",
        "What could we do to win you back?",
        "contract anniversary (7 years)",
        "espresso, pastry",
        "Kim Chen",
        "70% smaller",
        "lost your catalogue",
        "/call/",
    ):
        assert fact in text, fact
        assert fact.replace("'", "&#39;") in html or fact in html, fact


def test_a_hostile_name_never_breaks_the_digest_html_or_its_headers(world: Store) -> None:
    ws, cfg = w.workspace(Path("."))
    html = body(compose_digest(ws, cfg, dana(world), w.NOW, "k"), "html")
    assert "<img src=x" not in html and "<script>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    evil = Rep(external_id="R9", name="Eve\r\nBcc: thief@evil.example", email="eve@acme.example")
    listed = dana(world)
    message = compose_digest(ws, cfg, CallList(evil, listed.day, listed.items, 0), w.NOW, "k")
    headers = wire(message).split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in headers
    assert message["Bcc"] is None
    assert "thief@evil.example" not in message["To"].addresses[0].addr_spec


def test_the_daemon_sends_each_rep_one_digest_a_day_across_ticks_and_workers(
    world: Store, database_url: str, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    ws, cfg = w.workspace(Path("."), port)
    other = Store.open(database_url)
    clock = {"now": w.NOW - timedelta(hours=2)}

    def service(store: Store) -> Service:
        mailer = SmtpMailer.from_settings(w.settings(port))
        return Service(store, mailer, ws, clock=lambda: clock["now"], digest=cfg)

    async def two_days() -> None:
        workers = [service(world), service(other)]
        try:
            for _ in range(2 * 24 // 3):  # every 3 hours, both workers at once
                await asyncio.gather(*(worker.digests() for worker in workers))
                clock["now"] += timedelta(hours=3)
        finally:
            for worker in workers:
                await worker.mailer.close()

    try:
        asyncio.run(two_days())
    finally:
        other.close()
    days = sorted(
        (m["to"][0], str(m["message"]["Subject"]).rsplit(", ", 1)[1]) for m in handler.received
    )
    # Started at 23:30 on Sunday in New York: Sam's Sunday list is not sent at bedtime.
    assert days == [
        ("dana@acme.example", "Mon 23 Nov"),
        ("dana@acme.example", "Tue 24 Nov"),
        ("sam@acme.example", "Mon 23 Nov"),
        ("sam@acme.example", "Tue 24 Nov"),
    ]


def test_a_refused_digest_is_failed_and_can_be_sent_again_on_purpose(
    world: Store, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    handler.refuse["dana@acme.example"] = "550 5.1.1 no such mailbox"
    assert send(world, port, reps=["R1"]) == {"failed": 1}
    assert world.calls.digest_counts() == {"failed": 1}
    handler.refuse.clear()
    assert send(world, port, reps=["R1"]) == {}  # never again by itself the same day
    assert world.calls.reopen_digest("R1", w.NOW.date()) == "failed"
    assert send(world, port, reps=["R1"]) == {"sent": 1}
    assert world.calls.reopen_digest("R1", w.NOW.date()) == "sent"  # a sent one is kept
    assert send(world, port, reps=["R1"]) == {}
    assert [m["to"] for m in handler.received] == [["dana@acme.example"]]


def test_a_broken_digest_template_is_found_by_validation_and_never_stops_the_other_reps(
    world: Store, sink: tuple[Sink, int], tmp_path: Path
) -> None:
    import shutil

    from reengage.digest.mail import check_templates

    handler, port = sink
    templates = tmp_path / "templates"
    shutil.copytree(w.ROOT / "templates", templates)
    text = templates / "digest" / "digest.txt.j2"
    ws, cfg = w.workspace(tmp_path, port, templates_dir=templates)
    assert check_templates(ws, cfg, w.NOW) == []
    text.write_text(text.read_text() + "{{ clients[0].nosuch }}\n")
    [problem] = check_templates(ws, cfg, w.NOW)
    assert str(problem).startswith(f"{text}:")
    assert "no attribute 'nosuch': templates can use rep, day, count, more" in str(problem)

    # Sam's only client is marked do-not-contact: his empty day needs no template.
    log_call(world, "ny", CallReport(Reached.NOBODY, WorthIt.NO, NextStep.DO_NOT_CONTACT))

    async def go() -> dict[str, int]:
        mailer = SmtpMailer.from_settings(w.settings(port))
        try:
            report = await send_digests(world, mailer, ws, cfg, w.NOW, anytime=True)
            return dict(report.results)
        finally:
            await mailer.close()

    assert asyncio.run(go()) == {"failed": 1, "empty": 1}
    assert handler.received == []
    assert world.calls.digest_counts() == {"failed": 1, "empty": 1}


_batches = itertools.count()


@pytest.mark.clock
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    start=moments,
    gaps=st.lists(st.integers(1, 14 * 60), min_size=1, max_size=10),
    hour=st.integers(0, 23),
    window=st.integers(1, 24),
    weekdays=st.frozensets(st.integers(0, 6), min_size=1),
)
def test_each_rep_gets_one_digest_per_local_day_and_never_before_the_hour(
    store: Store,
    sink: tuple[Sink, int],
    start: datetime,
    gaps: list[int],
    hour: int,
    window: int,
    weekdays: frozenset[int],
) -> None:
    # A rep in every kind of zone, each with a lapsed client worth a call; the daemon ticks
    # at arbitrary moments minutes to hours apart. Each example has reps of its own.
    handler, port = sink
    batch = next(_batches)
    zones = {f"b{batch}-{i}": zone for i, zone in enumerate(ZONES)}
    reps = [
        {"rep_id": r, "email": f"{r}@acme.example", "name": r, "timezone": str(z)}
        for r, z in zones.items()
    ]
    clients = [
        {"customer_id": f"c-{r}", "email": f"c-{r}@client.example", "rep_id": r} for r in zones
    ]
    orders = [o for r in zones for o in w._orders(f"c-{r}", 10, 12, 60, 300, start)]
    for kind, items in ((Kind.REPS, reps), (Kind.CUSTOMERS, clients), (Kind.ACTIVITIES, orders)):
        assert import_items(store, kind, items, now=start, zone=ZoneInfo("UTC")).ok
    ws, cfg = w.workspace(Path("."), port)
    working = WorkingDays(weekdays, frozenset({start.date() + timedelta(days=1)}))
    cfg = dataclasses.replace(cfg, hour=hour, window_hours=window, days=working)
    ticks = [start + timedelta(minutes=sum(gaps[:i])) for i in range(len(gaps) + 1)]
    received = len(handler.received)

    async def go() -> None:
        mailer = SmtpMailer.from_settings(w.settings(port))
        try:
            for tick in ticks:
                await send_digests(store, mailer, ws, cfg, tick, reps=list(zones))
        finally:
            await mailer.close()

    asyncio.run(go())
    table = Digest.__table__
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                table.c.rep_external_id, table.c.day, table.c.created_at, table.c.status
            ).where(table.c.rep_external_id.in_(list(zones)))
        ).all()
    mails = {(m["to"][0], str(m["message"]["Subject"])) for m in handler.received[received:]}
    for rep, zone in zones.items():
        mine = [row for row in rows if row.rep_external_id == rep]
        days = [row.day for row in mine]
        assert len(days) == len(set(days)), f"{rep} ({zone}): two digests on one day"
        for row in mine:
            local = row.created_at.replace(tzinfo=UTC).astimezone(zone)
            assert row.day == local.date(), (zone, row)
            assert local.hour >= hour, (zone, row)  # never before the rep's morning
            assert local.hour < hour + window, (zone, row)  # nor late in their day
            assert working.is_working(row.day), (zone, row)  # nor on their day off
            if row.status == "sent":
                assert any(
                    to == f"{rep}@acme.example" and subject.endswith(f"{row.day:%a %d %b}")
                    for to, subject in mails
                ), (zone, row, mails)
        # and every local working day on which the daemon ticked within the window got its
        # digest
        due = {
            t.astimezone(zone).date()
            for t in ticks
            if hour <= t.astimezone(zone).hour < hour + window
            and working.is_working(t.astimezone(zone).date())
        }
        assert set(days) == due, (zone, ticks)
