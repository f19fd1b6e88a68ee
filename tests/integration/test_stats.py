"""Results against a store filled through the real code paths: enrollments, the sending
protocol, responses from the web, inbound mail and webhooks, conversions from imported
orders and outcomes of calls; then ``reengage stats`` as a person runs it."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from reengage import mail_responses, responses
from reengage.digest import CallContext, CallReport, record_outcome
from reengage.ingest import Kind, import_items
from reengage.mailparse import classify
from reengage.models import CauseScope, NextStep, Reached, StopReason, WorthIt
from reengage.responses import ProviderEvent
from reengage.stats import VerdictKind, campaign_results
from reengage.store import Store
from reengage.store.sending import MESSAGES, NewEnrollment
from tests.integration import inprocess
from tests.integration.test_cli import cli

T0 = datetime(2026, 10, 6, 10, 0, tzinfo=UTC)  # a Tuesday
LEASE = timedelta(minutes=10)
UTC_ZONE = ZoneInfo("UTC")


@dataclass
class Filled:
    """What was put in the store, by customer external id."""

    tokens: dict[str, str] = field(default_factory=dict)  # the first mail's token
    ids: dict[str, int] = field(default_factory=dict)


def _customers(store: Store, keys: list[str]) -> dict[str, int]:
    items = [{"customer_id": k, "email": f"{k}@example.com", "first_name": k} for k in keys]
    report = import_items(store, Kind.CUSTOMERS, items, now=T0, zone=UTC_ZONE)
    assert report.ok, report.rejected
    return store.customers.customer_ids(keys)


def _orders(store: Store, orders: list[tuple[str, datetime, float]], now: datetime) -> None:
    items = [
        {"customer_id": k, "occurred_at": when.isoformat(), "amount": amount}
        for k, when, amount in orders
    ]
    report = import_items(store, Kind.ACTIVITIES, items, now=now, zone=UTC_ZONE)
    assert report.ok, report.rejected


def _send_due(
    store: Store, now: datetime, steps: dict[str, tuple[str] | tuple[str, int, str]]
) -> dict[int, int]:
    """Send every due step through the protocol; returns message id by customer id.

    ``steps``: campaign → (this step's key[, the next step's index and key, due a week
    later]). Addresses starting with "bounce" are refused by the mail server (550).
    """
    sent: dict[int, int] = {}
    for claimed in store.sending.claim_due(now, 100, LEASE):
        key, *after = steps[claimed.campaign_id]
        started = store.sending.start_message(claimed, key, now, LEASE)
        assert started.message_id is not None
        if claimed.email.startswith("bounce"):
            store.sending.finish_bounced(
                started.message_id, claimed, response="550 no such user", now=now
            )
        else:
            store.sending.finish_sent(
                started.message_id,
                claimed,
                response="250 ok",
                smtp_id=f"<{started.token}@acme.example>",
                now=now,
                next_step=(after[0], after[1], now + timedelta(days=7)) if after else None,
            )
        sent[claimed.customer_id] = started.message_id
    return sent


def _token(store: Store, customer_id: int, step: str) -> str:
    """The token in the links of the mail ``step`` sent to the customer."""
    with store.engine.connect() as conn:
        found = conn.execute(
            MESSAGES.select().where(
                MESSAGES.c.customer_id == customer_id, MESSAGES.c.step_key == step
            )
        ).one()
    return str(found.token)


def fill(store: Store) -> Filled:
    """Twelve customers in "win-back" (four held out) and two in "follow-up" (no holdout).

    win-back, first mail "hello" on day 0: a01 opens twice and clicks, a02 opens, a03
    replies, a04 unsubscribes, a05 complains, bounce08's address is refused. Second mail
    "tip" on day 7 to those still in: a06 opens it. Orders: a01 on day 9 (120), a06 on
    day 35 (80: credited to the mail of day 7, but past the 30-day lift horizon), held-out
    h09 on day 5 (60) and h10 on day 31 (outside its window: not credited).
    """
    filled = Filled()
    win = ["a01", "a02", "a03", "a04", "a05", "a06", "a07", "bounce08"]
    held = ["h09", "h10", "h11", "h12"]
    follow = ["f1", "f2"]
    filled.ids = _customers(store, win + held + follow)
    ids = filled.ids
    store.sending.enroll(
        [NewEnrollment(ids[k], "win-back", k in held, "hello", T0) for k in win + held]
        + [NewEnrollment(ids[k], "follow-up", False, "changed", T0) for k in follow],
        T0,
    )
    sent = _send_due(store, T0, {"win-back": ("hello", 1, "tip"), "follow-up": ("changed",)})
    assert len(sent) == 10
    for key in win + follow:
        filled.tokens[key] = _token(store, ids[key], "changed" if key in follow else "hello")

    t = T0 + timedelta(hours=3)
    responses.record_open(store, filled.tokens["a01"], t)
    responses.record_click(store, filled.tokens["a01"], "https://shop.example/tips", t)
    responses.record_open(store, filled.tokens["a01"], t + timedelta(hours=1))  # again: one mail
    responses.record_open(store, filled.tokens["a02"], t)
    reply = (
        "From: a03 <a03@example.com>\r\nTo: reply+{token}@in.acme.example\r\n"
        "Subject: Re: hello\r\nMessage-ID: <r-1@example.com>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Thanks, we will order again next month.\r\n"
    ).format(token=filled.tokens["a03"])
    inbound = classify(reply.encode(), [f"reply+{filled.tokens['a03']}@in.acme.example"])
    assert mail_responses.record_inbound(store, inbound, t).kind == "reply"
    ref = store.responses.message(filled.tokens["a04"])
    assert ref is not None
    responses.unsubscribe(store, ref, t, source="web")
    event = ProviderEvent(id="evt-1", type="complaint", message=filled.tokens["a05"])
    assert responses.record_provider_event(store, event, t).action == "suppressed"

    day7 = T0 + timedelta(days=7)
    tips = _send_due(store, day7, {"win-back": ("tip",)})
    assert sorted(tips) == sorted(ids[k] for k in ("a01", "a02", "a06", "a07"))
    responses.record_open(store, _token(store, ids["a06"], "tip"), day7 + timedelta(hours=2))

    _orders(
        store,
        [
            ("a01", T0 + timedelta(days=9), 120.0),
            ("a06", T0 + timedelta(days=35), 80.0),
            ("h09", T0 + timedelta(days=5), 60.0),
            ("h10", T0 + timedelta(days=31), 45.0),
        ],
        now=T0 + timedelta(days=40),
    )
    outcomes = [
        ("a07", Reached.DECISION_MAKER, StopReason.PRICE, CauseScope.SPECIFIC),
        ("a02", Reached.SOMEONE_ELSE, StopReason.DELIVERY, CauseScope.SYSTEMIC),
        ("h11", Reached.DECISION_MAKER, StopReason.DELIVERY, CauseScope.SYSTEMIC),
        ("h12", Reached.NOBODY, None, None),
    ]
    for key, reached, reason, scope in outcomes:
        record_outcome(
            store,
            CallContext(ids[key], None, {}, "what-we-changed", "cli"),
            CallReport(reached, WorthIt.YES, NextStep.NOTHING, reason=reason, scope=scope),
            T0 + timedelta(days=20),
            today=(T0 + timedelta(days=20)).date(),
        )
    return filled


NOW = T0 + timedelta(days=41)


def test_funnels_count_each_mail_once_and_each_customer_who_came_back_once(store: Store) -> None:
    fill(store)
    found = campaign_results(store, NOW)
    assert [c.campaign_id for c in found.campaigns] == ["follow-up", "win-back"]
    follow, win = found.campaigns

    assert (win.enrolled, win.held_out) == (12, 4)
    hello, tip = win.steps
    assert hello.key == "hello" and tip.key == "tip"
    h = hello.funnel
    assert (h.sent, h.delivered, h.bounced) == (8, 7, 1)
    assert (h.opened, h.clicked, h.replied, h.unsubscribed, h.complained) == (2, 1, 1, 1, 1)
    assert (h.reactivated, h.revenue) == (0, 0.0)
    t = tip.funnel
    assert (t.sent, t.delivered, t.opened, t.reactivated, t.revenue) == (4, 4, 1, 2, 200.0)
    w = win.funnel
    assert (w.sent, w.delivered, w.bounced, w.opened, w.reactivated, w.revenue) == (
        12,
        11,
        1,
        3,
        2,
        200.0,
    )
    assert win.held_out_revenue == 60.0  # h10's order came after the holdout's window

    # Lift counts purchases within 30 days of entering, in both groups: a06's order on
    # day 35 is credited to the mail of day 7 but does not count towards lift.
    assert (win.lift.treated, win.lift.treated_reactivated) == (8, 1)
    assert (win.lift.held_out, win.lift.held_out_reactivated) == (4, 1)
    assert win.lift.kind is VerdictKind.NOT_ENOUGH_DATA
    assert win.timeline[0].day == T0.date() and win.timeline[-1].day == NOW.date()
    assert win.timeline[-1].treated_reactivated == 1
    assert win.timeline[-1].held_out_reactivated == 1
    assert win.timeline[4].held_out_reactivated == 0 and win.timeline[5].held_out_reactivated == 1

    assert (follow.enrolled, follow.held_out, follow.funnel.sent) == (2, 0, 2)
    assert follow.lift.kind is VerdictKind.NO_HOLDOUT

    calls = found.calls
    assert (calls.calls, calls.reached) == (4, 3)
    assert [(r.reason, r.calls, r.specific, r.systemic) for r in calls.reasons] == [
        ("delivery", 2, 0, 2),
        ("price", 1, 1, 0),
    ]


def test_since_and_campaign_narrow_to_the_customers_who_entered_then(store: Store) -> None:
    fill(store)
    later = campaign_results(store, NOW, since=T0 + timedelta(days=1))
    assert later.campaigns == []
    one = campaign_results(store, NOW, campaign="follow-up", since=T0)
    assert [c.campaign_id for c in one.campaigns] == ["follow-up"]


def generated(
    store: Store, rates: dict[str, tuple[float, float]], customers: int, seed: int = 42
) -> None:
    """``customers`` enter the campaigns of ``rates`` in turn, 10% held out at random, over
    three weeks from T0; each buys within 25 days of entering with the campaign's chance
    (treated, held out)."""
    rng = random.Random(seed)
    keys = [f"g{i:05d}" for i in range(customers)]
    ids = _customers(store, keys)
    names = sorted(rates)
    by_day: dict[datetime, list[NewEnrollment]] = {}
    orders = []
    for i, key in enumerate(keys):
        campaign = names[i % len(names)]
        holdout = rng.random() < 0.10
        entered = T0 + timedelta(days=rng.randint(0, 20))
        by_day.setdefault(entered, []).append(
            NewEnrollment(ids[key], campaign, holdout, "hello", entered)
        )
        if rng.random() < rates[campaign][1 if holdout else 0]:
            orders.append((key, entered + timedelta(days=rng.randint(1, 25)), 50.0))
    for entered, rows in sorted(by_day.items()):
        store.sending.enroll(rows, entered)
    _orders(store, orders, now=T0 + timedelta(days=46))


def test_generated_data_with_a_known_lift_is_measured_and_without_one_is_not(
    store: Store,
) -> None:
    """3,000 customers enter two campaigns, a 10% holdout each. In "works" mail lifts the
    chance of buying from 10% to 20%; in "idle" it changes nothing."""
    generated(store, {"works": (0.20, 0.10), "idle": (0.10, 0.10)}, 3000)
    found = {c.campaign_id: c for c in campaign_results(store, T0 + timedelta(days=46)).campaigns}
    works, idle = found["works"].lift, found["idle"].lift
    assert works.kind is VerdictKind.LIFT, works.verdict
    assert works.interval is not None and works.interval.contains(0.10)
    assert works.verdict.startswith("lift of ")
    assert idle.kind is VerdictKind.NO_MEASURABLE_LIFT, idle.verdict
    assert idle.interval is not None and idle.interval.contains(0.0)
    assert works.treated + works.held_out == 1500


# -- the command -------------------------------------------------------------------------------


def test_stats_command_prints_tables_csv_and_json(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    fill(store)
    env = {"REENGAGE_DATABASE_URL": database_url}

    table = cli("stats", cwd=tmp_path, env=env)
    assert table.returncode == 0, table.stderr
    text = table.stdout
    assert "Funnel" in text and "win-back" in text and "  hello" in text
    assert "opened*" in text and "privacy" in text
    assert "Lift against the holdout" in text and "1/8 (12.5%)" in text and "1/4 (25.0%)" in text
    assert "not enough data yet" in text and "no holdout group" in text
    assert "delivery" in text and "reached someone" in text

    narrow = inprocess.cli("stats", cwd=tmp_path, env={**env, "COLUMNS": "80"})
    assert narrow.returncode == 0, narrow.stderr
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80
    words = " ".join(narrow.stdout.split())
    assert "win-back: 12 entered: 8 treated, 4 held out" in words
    assert "treated 1/8 (12.5%), holdout 1/4 (25.0%); no estimate until there is a verdict" in words
    assert "pts" not in words  # no point estimate beside "not enough data" or "no holdout"
    assert "Verdict: not enough data yet" in words and "Verdict: no holdout group" in words

    as_csv = cli("stats", "--format", "csv", "--campaign", "win-back", cwd=tmp_path, env=env)
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {r["campaign"] for r in rows if r["campaign"]} == {"win-back"}
    sent = {r["step"]: r["value"] for r in rows if r["measure"] == "sent"}
    assert sent == {"hello": "8", "tip": "4"}  # 12 in all, as the table says
    (reactivated,) = [r["value"] for r in rows if r["measure"] == "reactivated"]
    assert reactivated == "2"
    calls = [(r["reason"], r["scope"], r["value"]) for r in rows if r["measure"] == "calls"]
    assert sorted(calls) == [
        ("", "", "1"),
        ("delivery", "systemic", "2"),
        ("price", "specific", "1"),
    ]

    as_json = cli("stats", "--format", "json", cwd=tmp_path, env=env)
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    win = next(c for c in doc["campaigns"] if c["campaign"] == "win-back")
    assert win["lift"]["treated_reactivated"] == 1 and win["lift"]["verdict_kind"] == (
        "not_enough_data"
    )
    assert doc["calls"]["calls"] == 4


def test_stats_command_says_what_is_wrong_with_its_input(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    fill(store)
    env = {"REENGAGE_DATABASE_URL": database_url}
    unknown = cli("stats", "--campaign", "winback", cwd=tmp_path, env=env)
    assert unknown.returncode == 2
    assert "--campaign" in unknown.stderr
    assert "follow-up, win-back" in unknown.stderr

    bad_date = cli("stats", "--since", "31/01/2026", cwd=tmp_path, env=env)
    assert bad_date.returncode == 2
    assert "--since" in bad_date.stderr and "like 2026-01-31 or a time ago like 30d" in (
        bad_date.stderr
    )
    bad_format = cli("stats", "--format", "xml", cwd=tmp_path, env=env)
    assert bad_format.returncode == 2 and "table" in bad_format.stderr


def test_every_csv_measure_is_explained_in_the_help_and_the_readme(tmp_path: Path) -> None:
    from reengage.stats.export import MEASURES

    shown = cli("stats", "--help", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    help_words = set(re.findall(r"\w+", shown.stdout))
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    for measure in MEASURES:
        assert measure in help_words, measure
        assert f"`{measure}`" in readme, measure
