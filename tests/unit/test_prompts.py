"""What a rep reads before dialling: whom to ask for, dates coming up, what to ask."""

from __future__ import annotations

from datetime import UTC, date, datetime

from reengage.detect import Assessment, Profile
from reengage.digest.prompts import ALWAYS_ASK, person_to_ask, questions, upcoming_dates
from reengage.models import Customer
from reengage.store.calls import PastCall, Touch, WaitingReply

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def customer(**fields: object) -> Customer:
    return Customer(external_id="c1", email="ana@example.com", first_name="Ana", **fields)  # type: ignore[arg-type]


def assessment(**ratios: float | None) -> Assessment:
    profile = Profile(
        customer_id=1,
        external_id="c1",
        segment=None,
        activity_count=10,
        order_count=10,
        first_order_at=NOW,
        last_order_at=NOW,
        last_activity_at=NOW,
        total_value=1000.0,
        total_margin=200.0,
        typical_gap_days=10.0,
        count_ratio=ratios.get("count_ratio"),
        aov_ratio=ratios.get("aov_ratio"),
        margin_ratio=None,
    )
    return Assessment(profile, 40, 10, 4, 0.9, 3000, 900, 2700, 2000, False, "why")


def test_the_decision_maker_is_asked_for_with_their_own_phone() -> None:
    found = person_to_ask(
        customer(
            decision_maker="Maria Li",
            decision_maker_role="Owner",
            phone="+49 30 1",
            contacts=[{"name": "maria li", "phone": "+49 170 2"}],
        )
    )
    assert (found.name, found.role, found.phone, found.standing) == (
        "Maria Li",
        "Owner",
        "+49 170 2",
        "decision maker",
    )


def test_without_a_decision_maker_the_most_senior_contact_is_chosen() -> None:
    found = person_to_ask(
        customer(
            phone="+1 555 0100",
            contacts=[
                {"name": "Lee", "role": "Office Manager"},
                {"name": "Kim", "role": "Head of Purchasing"},
                {"name": "Sam", "role": "Intern"},
            ],
        )
    )
    assert (found.name, found.phone, found.standing) == (
        "Kim",
        "+1 555 0100",
        "most senior contact known",
    )
    alone = person_to_ask(customer(last_name="Li"))
    assert (alone.name, alone.email, alone.standing) == ("Ana Li", "ana@example.com", "")


def test_dates_in_the_next_two_weeks_recur_yearly_and_count_the_years() -> None:
    today = date(2027, 2, 20)
    dates = [
        {"label": "birthday", "date": "2000-02-25"},  # year unknown
        {"label": "contract anniversary", "date": "2020-03-01"},
        {"label": "founded", "date": "2016-02-29"},  # falls on 28 Feb in 2027
        {"label": "too far", "date": "2019-03-10"},
        {"label": "broken", "date": "soon"},
    ]
    found = [str(u) for u in upcoming_dates(dates, today)]
    assert found == [
        "birthday: Thu 25 Feb, in 5 days",
        "founded (11 years): Sun 28 Feb, in 8 days",
        "contract anniversary (7 years): Mon 01 Mar, in 9 days",
    ]
    new_year = upcoming_dates([{"label": "birthday", "date": "1980-01-02"}], date(2026, 12, 30))
    assert [str(u) for u in new_year] == ["birthday (47 years): Sat 02 Jan, in 3 days"]


def test_questions_start_with_the_two_and_follow_the_signals() -> None:
    plain = questions(assessment(), customer(), [], None, None)
    assert plain == list(ALWAYS_ASK)
    shrinking = questions(assessment(aov_ratio=0.5, count_ratio=0.6), customer(), [], None, None)
    assert any("50% smaller" in q and "someone else" in q for q in shrinking)
    assert any("less often" in q and "competitor" in q for q in shrinking)
    past = PastCall(
        1, NOW, "R1", "decision_maker", None, "quality", "broken lids", "systemic",
        None, "yes", "nothing", None,
    )  # fmt: skip
    touches = [
        Touch(1, "click", NOW, "c", "s", "https://shop.example/lids"),
        Touch(1, "unsubscribe", NOW, "c", "s", None),
    ]
    reply = WaitingReply(1, "Re: hello", "We found another supplier.", NOW)
    full = questions(assessment(), customer(last_product="Lids"), touches, past, reply)
    # Five signals, room for three: what they wrote, what they said last time, how they
    # want to hear from us; the click and the last product are left off.
    assert full == [
        *ALWAYS_ASK,
        "They wrote back (“We found another supplier.”): start from what they said.",
        "Last time they mentioned quality: be ready to explain what has changed since.",
        "They asked for no more email: ask how they would rather hear from us.",
    ]
