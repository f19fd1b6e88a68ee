"""What a rep's call outcome does (``reengage/digest/outcomes.py``), on ``FakeStore``: which
enrollments end and why, do-not-contact, the follow-up, "call again on D", one outcome per
digest link. No database: the contract test keeps the fake honest."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reengage.campaigns import Campaign, ExitReason
from reengage.digest import Acted, CallContext, CallReport, record_outcome
from reengage.digest.outcomes import OutcomeError
from reengage.i18n import texts
from reengage.mail_responses import record_inbound
from reengage.mailparse import InboundKind
from reengage.models import CauseScope, NextStep, Reached, StopReason, WorthIt
from reengage.responses import Policy
from tests.fakes.worlds import NOW, FakeWorld, enrollments, inbound

TODAY = NOW.date()
FOLLOW_UP = "what-we-changed"


def campaign(campaign_id: str, exit_on: list[ExitReason] | None = None) -> Campaign:
    fields = {} if exit_on is None else {"exit_on": [r.value for r in exit_on]}
    return Campaign.model_validate(
        {
            "id": campaign_id,
            "name": campaign_id,
            "from": "hello@acme.example",
            "steps": [{"key": "first", "after": "3d", "subject": "Hi", "template": "t.html"}],
            **fields,
        }
    )


CAMPAIGNS = {
    "tips": campaign("tips"),  # the default exits: not on a call
    "winback": campaign("winback", [ExitReason.CALL_OUTCOME, ExitReason.REPLY]),
    FOLLOW_UP: campaign(FOLLOW_UP),
}


def world(rep_zone: str | None = "UTC") -> tuple[FakeWorld, int]:
    """Ana in two running campaigns and one she finished, a call and a reply waiting."""
    w = FakeWorld()
    cid = w.customer("c1", "ana@example.com", rep_external_id="R1")
    if rep_zone is not None:
        w.rep("R1", rep_zone)
    for n, name in enumerate(("tips", "winback")):
        w.message(w.enrollment(cid, name), "s1", f"T{n}")
    w.enrollment(cid, "older", status="completed")
    w.open_call(cid, "Lapsed", NOW - timedelta(hours=1))
    mail = inbound(InboundKind.REPLY, token="T0", sender="ana@example.com", text="call me")
    record_inbound(w.store, mail, NOW - timedelta(hours=3), Policy(exit_on=lambda c: []))
    return w, cid


def log(
    w: FakeWorld,
    cid: int,
    report: CallReport,
    *,
    key: str | None = "digest:1:c1",
    now: datetime = NOW,
) -> Acted:
    ctx = CallContext(cid, "R1", CAMPAIGNS, FOLLOW_UP, "web", dedupe_key=key)
    return record_outcome(w.store, ctx, report, now, today=now.date())


def report(reached: Reached, step: NextStep, **fields: Any) -> CallReport:
    reason = None if reached is Reached.NOBODY else StopReason.PRICE
    if step is NextStep.CALL_AGAIN:
        fields.setdefault("call_again_on", TODAY + timedelta(days=7))
    return CallReport(reached, WorthIt.YES, step, reason=reason, **fields)


# -- what each choice does ----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(reached=st.sampled_from(list(Reached)), step=st.sampled_from(list(NextStep)))
def test_what_an_outcome_ends_closes_and_answers(reached: Reached, step: NextStep) -> None:
    w, cid = world()
    acted = log(w, cid, report(reached, step))
    spoke = reached is not Reached.NOBODY
    if step is NextStep.DO_NOT_CONTACT:
        why, ending = "do_not_contact", {"tips", "winback"}
    elif step is NextStep.FOLLOW_UP:
        why, ending = "call_outcome", {"tips", "winback"}
    elif spoke:
        why, ending = "call_outcome", {"winback"}  # only where exit_on lists call_outcome
    else:
        why, ending = "", set()
    expected = [("older", "completed", None)]
    expected += [
        (c, "exited", why) if c in ending else (c, "active", None) for c in ("tips", "winback")
    ]
    if step is NextStep.FOLLOW_UP:
        expected.append((FOLLOW_UP, "active", None))
    assert enrollments(w, cid) == sorted(expected)
    assert acted.recorded and acted.ended == len(ending)
    assert acted.do_not_contact is (step is NextStep.DO_NOT_CONTACT)
    assert w.store.calls.call_facts([cid])[cid].status == (
        "do_not_contact" if step is NextStep.DO_NOT_CONTACT else "active"
    )
    old_call = w.store.tables.calls[0]
    assert old_call.status == ("cancelled" if step is NextStep.DO_NOT_CONTACT else "done")
    again = [c for c in w.store.calls.open_calls() if c.priority == "high"]
    assert len(again) == (1 if step is NextStep.CALL_AGAIN else 0)
    waiting = w.store.calls.waiting_replies(NOW - timedelta(days=1))
    assert len(waiting) == (0 if spoke else 1)  # a call nobody answered answers nothing
    assert acted.summary()[0] == "The call is recorded."


def test_the_follow_up_starts_at_its_first_step() -> None:
    w, cid = world()
    acted = log(w, cid, report(Reached.DECISION_MAKER, NextStep.FOLLOW_UP))
    assert acted.enrolled_in == FOLLOW_UP
    [line] = [e for e in w.store.sending.customer_sending(cid)[0] if e.campaign_id == FOLLOW_UP]
    assert (line.next_step_key, line.next_due_at) == ("first", NOW + timedelta(days=3))
    assert any(FOLLOW_UP in line for line in acted.summary())


def test_a_follow_up_campaign_that_is_not_loaded_is_refused_before_anything_changes() -> None:
    w, cid = world()
    ctx = CallContext(cid, "R1", {"tips": CAMPAIGNS["tips"]}, "missing", "web")
    with pytest.raises(OutcomeError, match=r"'missing' is not loaded.*tips"):
        record_outcome(
            w.store, ctx, report(Reached.DECISION_MAKER, NextStep.FOLLOW_UP), NOW, today=TODAY
        )
    assert w.store.calls.outcomes_since(None) == []
    assert enrollments(w, cid)[1:] == [("tips", "active", None), ("winback", "active", None)]


# -- call again --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "midnight"),
    [
        ("Asia/Tokyo", ZoneInfo("Asia/Tokyo")),
        ("America/New_York", ZoneInfo("America/New_York")),
        ("Not/AZone", ZoneInfo("UTC")),  # a zone nobody knows: UTC
        (None, ZoneInfo("UTC")),  # a rep not imported (yet): UTC
    ],
)
def test_call_again_is_due_at_midnight_of_that_day_where_the_rep_is(
    zone: str | None, midnight: ZoneInfo
) -> None:
    w, cid = world(zone)
    day = date(2026, 3, 31)
    acted = log(
        w,
        cid,
        report(
            Reached.SOMEONE_ELSE,
            NextStep.CALL_AGAIN,
            call_again_on=day,
            win_back=" free\x00 delivery ",
        ),
    )
    [call] = w.store.calls.open_calls([cid])
    assert call.due_at == datetime(2026, 3, 31, tzinfo=midnight)
    assert call.reason == "call-again:2026-03-31 free delivery"  # facts: worded on the card
    assert acted.call_again_on == day
    assert any("Tuesday, March 31, 2026" in line for line in acted.summary())


@settings(max_examples=100, deadline=None)
@given(days=st.integers(min_value=-3, max_value=400))
def test_call_again_must_be_after_today_and_within_a_year(days: int) -> None:
    problems = report(
        Reached.DECISION_MAKER, NextStep.CALL_AGAIN, call_again_on=TODAY + timedelta(days=days)
    ).problems(TODAY)
    assert ("call_again_on" in problems) is not (1 <= days <= 366)


def test_what_the_form_must_say() -> None:
    missing_day = CallReport(Reached.DECISION_MAKER, WorthIt.YES, NextStep.CALL_AGAIN)
    assert set(missing_day.problems(TODAY)) == {"call_again_on", "reason"}
    nobody = CallReport(Reached.NOBODY, WorthIt.LATER, NextStep.NOTHING)
    assert nobody.problems(TODAY) == {}
    long = report(
        Reached.DECISION_MAKER, NextStep.NOTHING, win_back="x" * 4001, contact_name="y" * 201
    )
    assert set(long.problems(TODAY)) == {"win_back", "contact_name"}
    w, cid = world()
    with pytest.raises(OutcomeError, match="reason"):
        log(w, cid, missing_day)
    assert w.store.calls.outcomes_since(None) == []


# -- one outcome per link ------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(first=st.sampled_from(list(NextStep)), second=st.sampled_from(list(NextStep)))
def test_a_digest_link_records_one_outcome_whatever_is_sent_again(
    first: NextStep, second: NextStep
) -> None:
    w, cid = world()
    log(w, cid, report(Reached.DECISION_MAKER, first))
    after_first = (enrollments(w, cid), w.store.calls.open_calls(), w.store.calls.call_facts([cid]))
    again = log(w, cid, report(Reached.DECISION_MAKER, second), now=NOW + timedelta(minutes=2))
    assert not again.recorded and again.outcome is not None
    assert again.outcome.next_step == first.value
    assert again.summary() == [
        f"This call was already recorded ({texts('en').moment(NOW)} UTC); nothing was changed."
    ]
    assert (
        enrollments(w, cid),
        w.store.calls.open_calls(),
        w.store.calls.call_facts([cid]),
    ) == after_first


def test_a_call_recorded_twice_is_told_in_the_reps_words_and_at_the_reps_time() -> None:
    # A rep in Shanghai reading Chinese: 12:00 UTC is 20:00 for her, and she is not told
    # a UTC time in English.
    w, cid = world("Asia/Shanghai")
    log(w, cid, report(Reached.NOBODY, NextStep.NOTHING))
    again = log(w, cid, report(Reached.NOBODY, NextStep.NOTHING), now=NOW + timedelta(hours=1))
    told = again.summary(texts("zh-CN"), ZoneInfo("Asia/Shanghai"))
    assert told == ["这次通话已经记录过了（2026/3/10 20:00）；没有任何更改。"]
    assert again.summary(texts("zh-CN"))[0].endswith("（2026/3/10 12:00 UTC）；没有任何更改。")


def test_without_a_link_every_submission_is_a_call_of_its_own() -> None:
    w, cid = world()
    for _ in range(2):
        assert log(w, cid, report(Reached.NOBODY, NextStep.NOTHING), key=None).recorded
    assert len(w.store.calls.outcomes_since(None)) == 2


# -- what is kept with the call --------------------------------------------------------------------


def test_notes_are_kept_clean_and_the_value_at_risk_with_them() -> None:
    w, cid = world()
    w.stats(
        cid,
        activity_count=12,
        order_count=12,
        first_order_at=NOW - timedelta(days=400),
        last_order_at=NOW - timedelta(days=90),
        last_activity_at=NOW - timedelta(days=90),
        total_value=12_000.0,
        typical_gap_days=30.0,
    )
    fields = {
        "contact_name": " \x00 ",
        "reason_text": "  too dear\x00 ",
        "scope": CauseScope.SYSTEMIC,
    }
    acted = log(w, cid, report(Reached.DECISION_MAKER, NextStep.REP_OFFER, **fields))
    saved = acted.outcome
    assert saved is not None
    assert (saved.contact_name, saved.reason_text, saved.scope) == (None, "too dear", "systemic")
    assert saved.value_at_risk is not None and saved.value_at_risk > 0
    assert saved.called_at == NOW and saved.source == "web"
    other, other_id = world()
    nothing_known = log(other, other_id, report(Reached.DECISION_MAKER, NextStep.NOTHING))
    assert nothing_known.outcome is not None and nothing_known.outcome.value_at_risk is None


def test_a_cause_nobody_called_specific_or_systemic_is_not_counted_unsure() -> None:
    from reengage.digest import causes
    from reengage.stats.export import _call_rows
    from reengage.stats.results import _calls

    w, cid = world()
    log(w, cid, report(Reached.DECISION_MAKER, NextStep.NOTHING, scope=CauseScope.UNSURE), key="1")
    log(w, cid, report(Reached.DECISION_MAKER, NextStep.NOTHING), key="2")  # --scope left out
    assert [o.scope for o in w.store.calls.outcomes_since(None)] == ["unsure", None]
    found = causes(w.store, None)
    [price] = found.rows
    assert (price.calls, price.unsure) == (2, 1)  # one rep picked "Not sure", not two
    assert price.unanswered == 1
    stats = _calls(found)
    assert stats.scopes == {"specific": 0, "systemic": 0, "unsure": 1}
    rows = _call_rows(stats)  # the CSV: calls by scope still add up to the calls made
    assert [(r.get("scope"), r["value"]) for r in rows if r["measure"] == "calls"] == [
        ("unsure", 1),
        (None, 1),
    ]


def test_a_follow_up_for_someone_already_do_not_contact_starts_nothing_and_says_so() -> None:
    w, cid = world()
    log(w, cid, report(Reached.NOBODY, NextStep.DO_NOT_CONTACT), key="1")
    acted = log(w, cid, report(Reached.DECISION_MAKER, NextStep.FOLLOW_UP), key="2")
    assert acted.enrolled_in is None
    assert acted.summary() == ["The call is recorded.", "They are do-not-contact: no follow-up."]
    assert (FOLLOW_UP, "active", None) not in enrollments(w, cid)
