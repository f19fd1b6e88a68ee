"""A rep's "call again" on the card: stored as facts when the call is recorded, worded when
the card is made — in the rep's language and their own dates, the day they asked for when it
was a day off, since when it is due when it was not logged on its day. Rows stored before
(English text with the UTC day) still render, in the rep's language too."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from reengage.campaigns import Campaign
from reengage.digest import CallContext, CallReport, record_outcome
from reengage.digest.calllist import day_start
from reengage.digest.reasons import call_again
from reengage.i18n import texts
from reengage.models import NextStep, Reached, StopReason, WorthIt
from reengage.store.calls import OpenCall
from reengage.workdays import WorkingDays
from tests.fakes.worlds import FakeWorld

SHANGHAI = ZoneInfo("Asia/Shanghai")
EN, ZH = texts("en"), texts("zh-CN")
# Tuesday 8 December, 18:00 UTC: already Wednesday the 9th in Shanghai.
SET_AT = datetime(2026, 12, 8, 18, 0, tzinfo=UTC)
LATIN = re.compile(r"[A-Za-z]{3,}")


def stored_call(asked: date, zone: str = "Asia/Shanghai", note: str | None = None) -> OpenCall:
    """The call a rep's "call again on ``asked``" puts on their list, as the store keeps it."""
    w = FakeWorld()
    cid = w.customer("c1", "ana@example.com", rep_external_id="R4")
    w.rep("R4", zone)
    follow = Campaign.model_validate(
        {
            "id": "what-we-changed",
            "name": "f",
            "from": "hello@acme.example",
            "steps": [{"key": "first", "after": "3d", "subject": "Hi", "template": "t.html"}],
        }
    )
    ctx = CallContext(cid, "R4", {follow.id: follow}, follow.id, "web", days=WorkingDays())
    report = CallReport(
        Reached.DECISION_MAKER,
        WorthIt.YES,
        NextStep.CALL_AGAIN,
        reason=StopReason.PRICE,
        win_back=note,
        call_again_on=asked,
    )
    local_today = SET_AT.astimezone(ZoneInfo(zone)).date()
    record_outcome(w.store, ctx, report, SET_AT, today=local_today)
    [call] = w.store.calls.open_calls([cid])
    return call


def test_a_chinese_card_says_the_call_again_in_chinese_with_the_reps_own_date() -> None:
    call = stored_call(date(2026, 12, 10), note="免运费")
    said = call_again(call, SHANGHAI, ZH, date(2026, 12, 10))
    assert said.line.startswith("您约定今天再打一次。")
    assert "12月9日" in said.line  # set on the 9th where the rep is, not the UTC 8th
    assert "免运费" in said.line
    assert not LATIN.search(said.line), said.line
    assert said.short == "今天按约回电"


def test_a_call_again_stored_before_as_english_text_still_renders_in_the_reps_words() -> None:
    old = OpenCall(
        1, 1, None, None, "You set this call on 08 Dec. Notes: free delivery", "high",
        day_start(date(2026, 12, 10), SHANGHAI), SET_AT,
    )  # fmt: skip
    said = call_again(old, SHANGHAI, ZH, date(2026, 12, 10))
    assert said.line == "您约定今天再打一次。 这次回电是您12月9日约定的。 备注：free delivery"
    english = call_again(old, SHANGHAI, EN, date(2026, 12, 10))
    assert english.line == (
        "You asked to call again today. You set this call on 09 Dec. Notes: free delivery"
    )


def test_a_call_again_asked_for_a_saturday_says_so_on_mondays_card() -> None:
    call = stored_call(date(2026, 12, 12), zone="UTC")  # Saturday
    monday = call_again(call, ZoneInfo("UTC"), EN, date(2026, 12, 14))
    assert monday.line.startswith("You asked to call again on Sat 12 Dec, a day off, so today.")
    assert monday.short == "call again today"


def test_a_call_again_not_logged_on_its_day_says_since_when_it_is_due() -> None:
    call = stored_call(date(2026, 12, 14), zone="UTC")  # Monday
    wednesday = call_again(call, ZoneInfo("UTC"), EN, date(2026, 12, 16))
    assert wednesday.line.startswith("You asked to call again on Mon 14 Dec; due since then.")
    assert "today" not in wednesday.line
    assert wednesday.short == "call again, due since Mon 14 Dec"
    saturday = stored_call(date(2026, 12, 12), zone="UTC")
    late = call_again(saturday, ZoneInfo("UTC"), ZH, date(2026, 12, 16))
    assert late.line.startswith(
        "您约定12月12日周六再打一次（那天不是工作日），12月14日周一起就该打了。"
    )
