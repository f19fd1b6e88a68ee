"""The fakes in ``tests/fakes`` keep the real ledgers' promises: every scenario here runs
against the real ``store.responses`` / ``store.calls`` / ``store.sending`` (SQLite and
PostgreSQL, through the ``store`` fixture) and against ``FakeStore``, and must come out the
same. A scenario is what a person would notice: a webhook retried, an unsubscribe, a reply
from the wrong address, a rep's "do not contact"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest

from reengage.campaigns import Campaign, ExitReason
from reengage.detect import Profile, assess, fit_population
from reengage.digest import CallContext, CallReport, record_outcome
from reengage.mail_responses import Arrival, record_inbound
from reengage.mailparse import InboundKind
from reengage.models import NextStep, Reached, StopReason, WorthIt
from reengage.responses import (
    Policy,
    ProviderEvent,
    pause,
    record_click,
    record_open,
    record_provider_event,
    unsubscribe,
)
from reengage.store import Store
from tests.fakes.worlds import NOW, FakeWorld, SqlWorld, World, enrollments, inbound, kinds

Scenario = Callable[[World], None]
SCENARIOS: list[Scenario] = []


def scenario(run: Scenario) -> Scenario:
    SCENARIOS.append(run)
    return run


def ana(w: World, *campaigns: str) -> tuple[int, list[int]]:
    """Ana, enrolled in ``campaigns`` (``tips`` when none), one mail sent in each."""
    cid = w.customer("c1", "ana@example.com", first_name="Ana", rep_external_id="R1")
    ids = [w.enrollment(cid, c) for c in campaigns or ("tips",)]
    for n, enrollment_id in enumerate(ids):
        w.message(enrollment_id, "s1", f"TOKEN{n}", message_id=f"<m{n}@acme.example>")
    return cid, ids


# -- responses -------------------------------------------------------------------------------


@scenario
def a_retried_bounce_webhook_is_acted_on_once(w: World) -> None:
    cid, _ = ana(w)
    event = ProviderEvent("ev-1", "bounce", "<m0@acme.example>", "ana@example.com", "5.1.1")
    first = record_provider_event(w.store, event, NOW)
    again = record_provider_event(w.store, event, NOW + timedelta(minutes=5))
    assert (first.action, again.action) == ("suppressed", "duplicate")
    assert kinds(w) == ["bounce"]
    assert w.store.sending.is_suppressed("ANA@example.com")
    assert enrollments(w, cid) == [("tips", "exited", "bounce")]
    _, messages = w.store.sending.customer_sending(cid)
    assert [m.status for m in messages] == ["bounced"]


@scenario
def a_retried_unsubscribe_webhook_is_acted_on_once(w: World) -> None:
    cid, _ = ana(w)
    event = ProviderEvent("ev-9", "unsubscribe", "TOKEN0", "ana@example.com")
    first = record_provider_event(w.store, event, NOW)
    again = record_provider_event(w.store, event, NOW + timedelta(minutes=5))
    assert (first.action, again.action) == ("suppressed", "duplicate")
    assert kinds(w) == ["unsubscribe"]
    assert enrollments(w, cid) == [("tips", "exited", "unsubscribe")]


@scenario
def a_webhook_about_another_recipient_is_kept_once_and_acts_on_nobody(w: World) -> None:
    cid, _ = ana(w)
    event = ProviderEvent("ev-2", "complaint", "TOKEN0", "mallory@example.com")
    assert record_provider_event(w.store, event, NOW).action == "unmatched"
    assert record_provider_event(w.store, event, NOW).action == "duplicate"
    kept, total = w.store.responses.unmatched()
    assert total == 1 and (kept[0].reason, kept[0].addresses) == (
        "other_address",
        "mallory@example.com",
    )
    assert not w.store.sending.is_suppressed("ana@example.com")
    assert enrollments(w, cid) == [("tips", "active", None)]
    assert w.store.responses.seen("provider:ev-2") and not w.store.responses.seen("provider:x")


@scenario
def an_unsubscribe_ends_every_running_enrollment_of_the_address(w: World) -> None:
    cid, _ = ana(w, "tips", "winback")
    twin = w.customer("c2", "Ana@Example.com")  # the same person, imported twice
    w.enrollment(twin, "tips", status="attention")  # held for a person: ends too
    w.enrollment(twin, "older", status="completed")  # ended: keeps how it ended
    ref = w.store.responses.message("TOKEN0")
    assert unsubscribe(w.store, ref, NOW, source="web") == 3
    assert unsubscribe(w.store, ref, NOW, source="web") == 0  # twice is harmless
    assert kinds(w) == ["unsubscribe"]
    assert w.store.sending.is_suppressed("ana@example.com")
    assert w.store.sending.suppressed_among(["Ana@Example.com", "bob@example.com"]) == {
        "ana@example.com"
    }
    assert enrollments(w, cid) == [
        ("tips", "exited", "unsubscribe"),
        ("winback", "exited", "unsubscribe"),
    ]
    assert enrollments(w, twin) == [
        ("older", "completed", None),
        ("tips", "exited", "unsubscribe"),
    ]


@scenario
def a_reply_from_another_address_is_unverified_and_acts_on_nothing(w: World) -> None:
    cid, _ = ana(w)
    mail = inbound(
        InboundKind.REPLY,
        message_ids=("m0@acme.example",),
        sender="boss@example.com",
        subject="Re: Hello",
        text="Call me",
    )
    found = record_inbound(w.store, mail, NOW)
    assert (found.kind, found.action) == ("reply", "unverified")
    assert enrollments(w, cid) == [("tips", "active", None)]
    assert kinds(w) == []
    assert w.store.responses.replies() == []
    [kept] = w.store.responses.replies(status=None)
    assert (kept["status"], kept["customer_id"], kept["sender"]) == (
        "unverified",
        cid,
        "boss@example.com",
    )
    assert w.store.calls.waiting_replies(NOW - timedelta(days=1)) == []
    assert w.store.responses.unmatched()[0][0].reason == "other_address"


@scenario
def the_customers_reply_ends_that_campaign_and_waits_for_the_rep(w: World) -> None:
    cid, _ = ana(w, "tips", "winback")
    mail = inbound(
        InboundKind.REPLY,
        token="TOKEN1",
        sender="Ana@Example.com",
        subject="Re: Hello",
        text="Please call me",
    )
    assert record_inbound(w.store, mail, NOW).action == "exited"
    assert enrollments(w, cid) == [("tips", "active", None), ("winback", "exited", "reply")]
    [waiting] = w.store.calls.waiting_replies(NOW - timedelta(days=1))
    assert (waiting.customer_id, waiting.text) == (cid, "Please call me")
    tips, winback = (w.store.responses.message(t) for t in ("TOKEN0", "TOKEN1"))
    by_enrollment = w.store.responses.kinds_by_enrollment(
        [tips.enrollment_id, winback.enrollment_id]
    )
    assert by_enrollment == {winback.enrollment_id: {("s1", "reply")}}


@scenario
def an_out_of_office_is_kept_and_changes_nothing(w: World) -> None:
    cid, _ = ana(w)
    mail = inbound(
        InboundKind.AUTO_REPLY,
        token="TOKEN0",
        sender="ana@example.com",
        subject="Away",
        text="Back Monday",
        auto_reason="auto-submitted",
    )
    assert record_inbound(w.store, mail, NOW).action == "stored"
    assert enrollments(w, cid) == [("tips", "active", None)]
    assert kinds(w) == ["auto_reply"]
    assert w.store.calls.waiting_replies(NOW - timedelta(days=1)) == []
    assert [r["automatic"] for r in w.store.responses.replies()] == [True]


@scenario
def a_click_proves_one_open_and_exits_only_where_the_campaign_says(w: World) -> None:
    cid, _ = ana(w, "tips", "winback")
    exits_on_click = Policy(exit_on=lambda c: ["click"] if c == "winback" else None)
    record_click(w.store, "TOKEN0", "https://acme.example/a", NOW, exits_on_click)
    record_click(w.store, "TOKEN0", "https://acme.example/b", NOW, exits_on_click)
    assert not record_open(w.store, "TOKEN0", NOW)  # the click proved it already
    assert record_open(w.store, "TOKEN1", NOW) and not record_open(w.store, "TOKEN1", NOW)
    assert record_click(w.store, "NOPE", "https://acme.example", NOW) is None
    assert kinds(w) == ["click", "click", "open", "open"]
    assert enrollments(w, cid) == [("tips", "active", None), ("winback", "active", None)]
    record_click(w.store, "TOKEN1", "https://acme.example/c", NOW, exits_on_click)
    assert enrollments(w, cid) == [("tips", "active", None), ("winback", "exited", "click")]


@scenario
def a_pause_ends_what_runs_and_keeps_the_customer_out_until_then(w: World) -> None:
    cid, _ = ana(w, "tips", "winback")
    ref = w.store.responses.message("TOKEN0")
    until = pause(w.store, ref, NOW)
    pause(w.store, ref, NOW)
    assert until == NOW + timedelta(days=90)
    assert w.store.calls.call_facts([cid])[cid].paused_until == until
    assert w.store.responses.message("TOKEN0").paused_until == until
    assert enrollments(w, cid) == [("tips", "exited", "paused"), ("winback", "exited", "paused")]
    assert kinds(w) == ["pause"]
    assert not w.store.sending.is_suppressed("ana@example.com")


def at_verp(w: World, token: str) -> Arrival:
    """Delivered to the signed bounce address of our mail ``token`` (where real DSNs go)."""
    return Arrival(verp=w.store.responses.message(token))


@scenario
def soft_bounces_suppress_once_they_repeat(w: World) -> None:
    cid, _ = ana(w)
    mail = inbound(InboundKind.SOFT_BOUNCE, token="TOKEN0", recipients=("ana@example.com",))
    at = at_verp(w, "TOKEN0")
    actions = [
        record_inbound(w.store, mail, NOW + timedelta(days=d), arrival=at).action for d in range(3)
    ]
    assert actions == ["stored", "stored", "suppressed"]
    assert w.store.responses.count_since(cid, "soft_bounce", NOW + timedelta(days=1)) == 2
    assert enrollments(w, cid) == [("tips", "exited", "bounce")]
    event = ProviderEvent("ev-3", "soft_bounce", "TOKEN0", "ana@example.com")
    assert record_provider_event(w.store, event, NOW).action == "suppressed"
    assert record_provider_event(w.store, event, NOW).action == "duplicate"


@scenario
def a_report_naming_another_address_or_no_mail_of_ours_acts_on_nobody(w: World) -> None:
    cid, _ = ana(w)
    other = inbound(InboundKind.HARD_BOUNCE, token="TOKEN0", recipients=("bob@example.com",))
    nothing = inbound(InboundKind.COMPLAINT, message_ids=("zz@elsewhere",))
    assert record_inbound(w.store, other, NOW, arrival=at_verp(w, "TOKEN0")).action == "unmatched"
    # Even signed by a listed feedback loop, a report about no mail of ours acts on nobody.
    signed = Arrival(reporter="fbl.example")
    assert record_inbound(w.store, nothing, NOW + timedelta(seconds=1), arrival=signed).action == (
        "unmatched"
    )
    kept, total = w.store.responses.unmatched(limit=2)
    assert (total, [k.reason for k in kept]) == (2, ["no_message", "other_address"])
    assert kinds(w) == [] and not w.store.sending.is_suppressed("ana@example.com")
    assert enrollments(w, cid) == [("tips", "active", None)]


@scenario
def a_message_is_found_by_its_token_or_message_id(w: World) -> None:
    cid, _ = ana(w, "tips", "winback")
    assert w.store.responses.message_by_smtp_ids(["m1@acme.example"]).token == "TOKEN1"
    assert w.store.responses.message_by_smtp_ids(["<m0@acme.example>", "x@y"]).token == "TOKEN0"
    assert w.store.responses.message_by_smtp_ids(["<>"]) is None
    assert [r.token for r in w.store.responses.messages_by_folded_token("token1")] == ["TOKEN1"]
    assert w.store.responses.message("token1") is None
    assert w.store.responses.customers_by_email("ANA@example.com") == [cid]
    assert w.store.responses.customer_external_id("ana@EXAMPLE.com") == "c1"


def ana_moved(w: World) -> int:
    """Ana, mailed at her old address (TOKEN0, in ``tips``), then imported with a new one."""
    cid = w.customer("c1", "ana@old.example", first_name="Ana")
    w.message(w.enrollment(cid, "tips"), "s1", "TOKEN0", message_id="<m0@acme.example>")
    w.change_email(cid, "ana@new.example")
    return cid


@scenario
def a_bounce_acts_on_the_address_mailed_not_the_customers_new_one(w: World) -> None:
    cid = ana_moved(w)
    assert w.store.responses.message("TOKEN0").email == "ana@old.example"
    named_new = inbound(InboundKind.HARD_BOUNCE, token="TOKEN0", recipients=("ana@new.example",))
    at = at_verp(w, "TOKEN0")
    assert record_inbound(w.store, named_new, NOW, arrival=at).action == "unmatched"  # not mailed
    assert record_provider_event(w.store, ProviderEvent("e1", "bounce", "TOKEN0"), NOW).action == (
        "suppressed"
    )
    named_old = inbound(InboundKind.HARD_BOUNCE, message_ids=("m0@acme.example",),
                        recipients=("<Ana@OLD.example>",))  # fmt: skip
    assert record_inbound(w.store, named_old, NOW, arrival=at).action == "suppressed"
    assert w.store.sending.suppressed_among(["ana@old.example", "ana@new.example"]) == {
        "ana@old.example"
    }
    assert enrollments(w, cid) == [("tips", "active", None)]  # her new address is mailed on
    assert [m.status for m in w.store.sending.customer_sending(cid)[1]] == ["bounced"]


@scenario
def an_opt_out_ends_the_enrollments_of_whoever_has_the_old_address_now(w: World) -> None:
    cid = ana_moved(w)
    heir = w.customer("c2", "ana@old.example")  # the address is another record's now
    w.enrollment(heir, "tips")
    event = ProviderEvent("e2", "complaint", "<m0@acme.example>", "ANA@old.example")
    assert record_provider_event(w.store, event, NOW).action == "suppressed"
    assert enrollments(w, heir) == [("tips", "exited", "complaint")]
    assert enrollments(w, cid) == [("tips", "active", None)]  # a mailbox complained, not Ana
    assert not w.store.sending.is_suppressed("ana@new.example")
    ref = w.store.responses.message("TOKEN0")
    assert unsubscribe(w.store, ref, NOW, source="web") == 1  # Ana asks: her new address too
    assert enrollments(w, cid) == [("tips", "exited", "unsubscribe")]
    assert w.store.sending.is_suppressed("ana@new.example")
    assert kinds(w) == ["complaint", "unsubscribe"]


@scenario
def soft_bounces_count_per_address_mailed(w: World) -> None:
    cid = ana_moved(w)
    w.message(w.enrollment(cid, "winback"), "s1", "TOKEN1")  # to her new address
    old = inbound(InboundKind.SOFT_BOUNCE, token="TOKEN0", recipients=("ana@old.example",))
    new = inbound(InboundKind.SOFT_BOUNCE, token="TOKEN1", recipients=("ana@new.example",))
    mails = ((old, "TOKEN0"), (old, "TOKEN0"), (new, "TOKEN1"), (old, "TOKEN0"))
    actions = [
        record_inbound(w.store, m, NOW + timedelta(days=d), arrival=at_verp(w, token)).action
        for d, (m, token) in enumerate(mails)
    ]
    assert actions == ["stored", "stored", "stored", "suppressed"]  # the old one's third
    assert w.store.sending.suppressed_among(["ana@old.example", "ana@new.example"]) == {
        "ana@old.example"
    }
    assert enrollments(w, cid) == [("tips", "active", None), ("winback", "active", None)]


@scenario
def a_reply_counts_only_from_the_address_mailed(w: World) -> None:
    cid = ana_moved(w)
    for sender in ("ana@new.example", "Ana@Old.Example"):
        mail = inbound(InboundKind.REPLY, token="TOKEN0", sender=sender, text=f"from {sender}")
        record_inbound(w.store, mail, NOW)
    replies = w.store.responses.replies(status=None)
    assert sorted((r["sender"], r["status"]) for r in replies) == [
        ("Ana@Old.Example", "new"),
        ("ana@new.example", "unverified"),
    ]
    assert enrollments(w, cid) == [("tips", "exited", "reply")]


@scenario
def a_mail_from_before_recipients_were_kept_acts_on_the_current_address(w: World) -> None:
    cid = w.customer("c1", "ana@old.example")
    w.message(w.enrollment(cid, "tips"), "s1", "TOKEN0", legacy=True)
    w.change_email(cid, "ana@new.example")
    assert w.store.responses.message("TOKEN0").email == "ana@new.example"
    event = ProviderEvent("e3", "bounce", "TOKEN0", "ana@new.example")
    assert record_provider_event(w.store, event, NOW).action == "suppressed"
    assert w.store.sending.is_suppressed("ana@new.example")
    assert enrollments(w, cid) == [("tips", "exited", "bounce")]


@scenario
def a_reps_card_reads_what_happened_in_order(w: World) -> None:
    cid, _ = ana(w)
    record_click(w.store, "TOKEN0", "https://acme.example/a", NOW + timedelta(hours=1))
    for hours, kind, text in ((2, InboundKind.AUTO_REPLY, "away"), (3, InboundKind.REPLY, "hi")):
        mail = inbound(kind, token="TOKEN0", sender="ana@example.com", subject=text, text=text)
        record_inbound(w.store, mail, NOW + timedelta(hours=hours), Policy(exit_on=lambda c: []))
    touched = w.store.calls.touches([cid, 99], NOW - timedelta(days=1))
    assert sorted((t.at, t.kind) for t in touched) == [
        (NOW, "sent"),
        (NOW + timedelta(hours=1), "click"),
        (NOW + timedelta(hours=1), "open"),
        (NOW + timedelta(hours=2), "auto_reply"),
        (NOW + timedelta(hours=3), "reply"),
    ]
    later = w.store.calls.touches([cid], NOW + timedelta(hours=2))
    assert [t.kind for t in later] == ["auto_reply", "reply"]
    assert [r["subject"] for r in w.store.responses.replies()] == ["hi", "away"]  # people first
    since = NOW + timedelta(minutes=30)
    assert [r.kind for r in w.store.responses.recent(since, limit=2)] == ["click", "open"]
    [row] = w.store.responses.recent(NOW + timedelta(hours=3))
    assert (row.email, row.campaign_id, row.source) == ("ana@example.com", "tips", "mail")


# -- call outcomes -------------------------------------------------------------------------------


def campaign(campaign_id: str, *exit_on: ExitReason) -> Campaign:
    return Campaign.model_validate(
        {
            "id": campaign_id,
            "name": campaign_id,
            "from": "hello@acme.example",
            "steps": [{"key": "first", "after": "2d", "subject": "Hi", "template": "t.html"}],
            **({"exit_on": [r.value for r in exit_on]} if exit_on else {}),
        }
    )


CAMPAIGNS = {
    "tips": campaign("tips"),
    "winback": campaign("winback", ExitReason.CALL_OUTCOME),
    "what-we-changed": campaign("what-we-changed"),
}


def log_call(w: World, cid: int, report: CallReport, key: str | None = "digest:1:c1"):
    ctx = CallContext(cid, "R1", CAMPAIGNS, "what-we-changed", "web", dedupe_key=key)
    return record_outcome(w.store, ctx, report, NOW, today=NOW.date())


def reached(step: NextStep, **fields: object) -> CallReport:
    return CallReport(Reached.DECISION_MAKER, WorthIt.YES, step, reason=StopReason.PRICE, **fields)


def ana_with_a_call_waiting(w: World) -> int:
    cid, _ = ana(w, "tips", "winback")
    w.rep("R1", "America/New_York")
    w.open_call(cid, "Lapsed", NOW - timedelta(hours=1))
    record_inbound(
        w.store,
        inbound(InboundKind.REPLY, token="TOKEN0", sender="ana@example.com", text="call me"),
        NOW - timedelta(hours=2),
        Policy(exit_on=lambda c: []),
    )
    return cid


@scenario
def do_not_contact_marks_the_customer_and_ends_everything_once(w: World) -> None:
    cid = ana_with_a_call_waiting(w)
    first = log_call(w, cid, reached(NextStep.DO_NOT_CONTACT))
    again = log_call(w, cid, reached(NextStep.NOTHING))  # the form sent twice
    assert (first.recorded, first.ended, first.do_not_contact) == (True, 2, True)
    assert (again.recorded, again.outcome.next_step) == (False, "do_not_contact")
    assert w.store.calls.call_facts([cid])[cid].status == "do_not_contact"
    assert enrollments(w, cid) == [
        ("tips", "exited", "do_not_contact"),
        ("winback", "exited", "do_not_contact"),
    ]
    assert w.store.calls.open_calls() == []
    assert w.store.calls.waiting_replies(NOW - timedelta(days=1)) == []
    assert [o.next_step for o in w.store.calls.outcomes_since(None)] == ["do_not_contact"]
    assert w.store.calls.last_calls([cid])[cid].next_step == "do_not_contact"


@scenario
def a_follow_up_ends_what_runs_and_enrolls_the_follow_up_campaign(w: World) -> None:
    cid = ana_with_a_call_waiting(w)
    acted = log_call(w, cid, reached(NextStep.FOLLOW_UP), key=None)
    assert (acted.recorded, acted.ended, acted.enrolled_in) == (True, 2, "what-we-changed")
    assert acted.outcome is None  # no dedupe key: nothing to read it back by
    assert enrollments(w, cid) == [
        ("tips", "exited", "call_outcome"),
        ("what-we-changed", "active", None),
        ("winback", "exited", "call_outcome"),
    ]
    lines, _ = w.store.sending.customer_sending(cid)
    [followup] = [e for e in lines if e.campaign_id == "what-we-changed"]
    assert (followup.next_step_key, followup.next_due_at) == ("first", NOW + timedelta(days=2))


@scenario
def call_again_puts_a_call_on_the_reps_list_that_day(w: World) -> None:
    cid = ana_with_a_call_waiting(w)
    acted = log_call(w, cid, reached(NextStep.CALL_AGAIN, call_again_on=date(2026, 3, 20)))
    assert (acted.ended, acted.call_again_on) == (1, date(2026, 3, 20))  # winback exits on calls
    [call] = w.store.calls.open_calls([cid])
    assert (call.priority, call.due_at) == ("high", NOW.replace(day=20, hour=4))  # NY midnight
    assert enrollments(w, cid) == [("tips", "active", None), ("winback", "exited", "call_outcome")]
    assert w.store.calls.waiting_replies(NOW - timedelta(days=1)) == []


@scenario
def a_call_nobody_answered_changes_no_enrollment(w: World) -> None:
    cid = ana_with_a_call_waiting(w)
    report = CallReport(Reached.NOBODY, WorthIt.LATER, NextStep.NOTHING)
    assert log_call(w, cid, report).ended == 0
    assert enrollments(w, cid) == [("tips", "active", None), ("winback", "active", None)]
    assert w.store.calls.open_calls() == []  # the call is done all the same
    assert len(w.store.calls.waiting_replies(NOW - timedelta(days=1))) == 1


@scenario
def the_outcome_keeps_what_the_customers_habit_was_worth(w: World) -> None:
    cid, _ = ana(w)
    w.rep("R1")
    habit = {
        "activity_count": 12,
        "order_count": 12,
        "total_value": 12_000.0,
        "total_margin": 3_000.0,
        "typical_gap_days": 30.0,
        "aov_ratio": 0.8,
        "first_order_at": NOW - timedelta(days=420),
        "last_order_at": NOW - timedelta(days=90),
        "last_activity_at": NOW - timedelta(days=90),
    }
    w.stats(cid, **habit)
    [profile] = w.store.detection.profiles(customer_ids=[cid], rep_external_ids=["R1"])
    assert profile == Profile(
        cid, "c1", None, **dict.fromkeys(("count_ratio", "margin_ratio")), **habit, name="Ana"
    )
    assert list(w.store.detection.profiles(rep_external_ids=["R2"])) == []
    assert w.store.detection.gap_sample() == [(None, 30.0)]
    assert w.store.detection.rhythm_sample() == [(12, 30.0)]
    assert w.store.detection.latest_lapse_model() is None
    expected = assess(profile, fit_population([(None, 30.0)]), NOW)
    assert expected is not None
    acted = log_call(w, cid, reached(NextStep.REP_OFFER))
    assert acted.outcome.value_at_risk == round(expected.value_per_year, 2)


@pytest.mark.parametrize("run", SCENARIOS, ids=lambda s: s.__name__)
def test_the_real_ledgers(store: Store, run: Scenario) -> None:
    run(SqlWorld(store))


@pytest.mark.parametrize("run", SCENARIOS, ids=lambda s: s.__name__)
def test_the_fakes(run: Scenario) -> None:
    run(FakeWorld())
