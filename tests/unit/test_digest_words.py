"""The digest card's words: at most five questions, the strongest reason first, the value at
risk in one phrase, a dialable ``tel:`` link, in English and in Chinese."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from reengage.detect import Assessment, Population, Profile, assess
from reengage.digest.prompts import ALWAYS_ASK, MAX_QUESTIONS, questions, tailored
from reengage.digest.reasons import signals, tel_href, value_phrase
from reengage.history import Event, summarize
from reengage.i18n import texts
from reengage.lapse_model import FEATURES, LapseModel
from reengage.models import Customer
from reengage.store.calls import PastCall, Touch, WaitingReply

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
EN, ZH = texts("en"), texts("zh-CN")
ratios = st.none() | st.floats(0.05, 1.5)


def assessment(
    *,
    count: float | None = None,
    aov: float | None = None,
    margin: float | None = None,
    silent: float = 5.0,
    gap: float = 10.0,
    orders: int = 10,
    declining: bool = False,
) -> Assessment:
    profile = Profile(
        customer_id=1,
        external_id="c1",
        segment=None,
        activity_count=orders,
        order_count=orders,
        first_order_at=NOW - timedelta(days=400),
        last_order_at=NOW - timedelta(days=silent),
        last_activity_at=NOW - timedelta(days=silent),
        total_value=1000.0,
        total_margin=200.0,
        typical_gap_days=gap,
        count_ratio=count,
        aov_ratio=aov,
        margin_ratio=margin,
    )
    ratio = silent / gap
    return Assessment(profile, silent, gap, ratio, 0.5, 3000, 0, 2000, 2000, declining, "")


# -- what to ask -----------------------------------------------------------------------------


touch_kinds = st.sampled_from(["open", "click", "unsubscribe", "complaint", "bounce", "sent"])


@given(
    aov=ratios,
    count=ratios,
    orders=st.integers(0, 30),
    kinds=st.lists(touch_kinds, max_size=6),
    called_about=st.none() | st.sampled_from(["price", "quality", "habit", "competitor"]),
    replied=st.booleans(),
    product=st.none() | st.text(min_size=1, max_size=20),
    interests=st.lists(st.text(min_size=1, max_size=10), max_size=4),
    zh=st.booleans(),
)
def test_a_card_asks_the_two_then_at_most_three_of_the_most_relevant(
    aov: float | None,
    count: float | None,
    orders: int,
    kinds: list[str],
    called_about: str | None,
    replied: bool,
    product: str | None,
    interests: list[str],
    zh: bool,
) -> None:
    t = ZH if zh else EN
    found = assessment(aov=aov, count=count, orders=orders)
    customer = Customer(
        external_id="c1", email="a@b.example", last_product=product, interests=interests
    )
    touches = [Touch(1, kind, NOW, "c", "s", "https://shop.example/x") for kind in kinds]
    past = None
    if called_about:
        past = PastCall(
            1, NOW, "R1", "decision_maker", None, called_about, None, None,
            None, "yes", "nothing", None,
        )  # fmt: skip
    reply = WaitingReply(1, "Re: hi", "Call me please", NOW) if replied else None
    asked = questions(found, customer, touches, past, reply, t)
    ranked = tailored(found, customer, touches, past, reply, t)

    assert len(asked) <= MAX_QUESTIONS == 5
    assert asked[:2] == [t.gettext(q) for q in ALWAYS_ASK]
    assert asked[2:] == [p.text for p in ranked[:3]]  # the most relevant, in that order
    assert [p.relevance for p in ranked] == sorted((p.relevance for p in ranked), reverse=True)
    assert len(set(asked)) == len(asked)
    if replied:  # what they wrote is always the first thing to talk about
        assert "Call me please" in asked[2]
    if len(ranked) > 3:  # anything left off is less relevant than everything asked
        assert min(p.relevance for p in ranked[:3]) >= max(p.relevance for p in ranked[3:])


def test_a_reply_and_the_last_call_outrank_a_click_and_the_last_product() -> None:
    customer = Customer(external_id="c1", email="a@b.example", last_product="Lids")
    touches = [Touch(1, "click", NOW, "c", "s", "https://shop.example/lids")]
    past = PastCall(
        1, NOW, "R1", "decision_maker", None, "price", None, None, None, "yes", "nothing", None
    )
    reply = WaitingReply(1, "Re: hi", "We found another supplier.", NOW)
    asked = questions(assessment(aov=0.4), customer, touches, past, reply)
    assert asked[2:] == [
        "They wrote back (“We found another supplier.”): start from what they said.",
        "Last time they mentioned price: be ready to explain what has changed since.",
        "Their orders are 60% smaller: has their volume changed, or do they now buy part of "
        "it from someone else?",
    ]


# -- why now ---------------------------------------------------------------------------------


@given(
    count=ratios,
    aov=ratios,
    margin=ratios,
    silent=st.floats(0.5, 400),
    gap=st.floats(1, 60),
    declining=st.booleans(),
)
def test_a_decline_leads_while_they_still_buy_and_the_silence_leads_once_they_stopped(
    count: float | None,
    aov: float | None,
    margin: float | None,
    silent: float,
    gap: float,
    declining: bool,
) -> None:
    found = signals(
        assessment(
            count=count, aov=aov, margin=margin, silent=silent, gap=gap, declining=declining
        ),
        EN,
    )
    declines = [
        r for r in found if "smaller" in r.line or "less often" in r.line or "Margin" in r.line
    ]
    silence = next(r for r in found if "orders every" in r.line)
    if declining and declines:
        assert found[0] in declines
        assert found.index(silence) == len(declines)
    else:
        assert found[0] is silence
    strengths = [r.strength for r in declines]
    assert strengths == sorted(strengths, reverse=True)  # the deepest fall first
    if silent / gap < 1:  # on rhythm: never worded as a silence
        assert "silent for" not in silence.line and "on rhythm" in silence.line


def test_a_shrinking_weekly_buyer_reads_as_a_decline_not_as_five_silent_days() -> None:
    found = signals(assessment(aov=0.3, silent=5, gap=7, declining=True), EN)
    assert [r.line for r in found] == [
        "Their last 3 orders were 70% smaller than the ones before.",
        "Usually orders every 7 days; last order 5 days ago, on rhythm.",
    ]
    assert found[0].short == "orders 70% smaller"
    zh = signals(assessment(aov=0.3, silent=5, gap=7, declining=True), ZH)
    assert zh[0].line == "最近 3 笔订单比之前少了 70%。"
    lapsed = signals(assessment(aov=0.3, silent=60, gap=10), EN)
    assert lapsed[0].line == "Usually orders every 10 days; silent for 60 days (6.0× their rhythm)."


def _orders(days: list[float], amounts: list[float], silent: float) -> Profile:
    last = NOW - timedelta(days=silent)
    events = [
        Event("order", last - timedelta(days=days[-1] - d), a, a / 4)
        for d, a in zip(days, amounts, strict=True)
    ]
    return Profile.from_summary(summarize(events), 1, "c1", None)


def test_the_card_says_in_plain_words_what_of_the_history_raised_the_score() -> None:
    # Orders a week apart, then 9 days apart, the last three baskets 20% smaller: each under
    # the 30% a decline line needs, so only the score's drivers can tell the rep.
    profile = _orders([0.0, 7, 14, 21, 28, 35, 44, 53, 62], [100.0] * 6 + [80.0] * 3, 12)
    pushes = {"gap_trend": -3.0, "value_trend": -3.0, "own_vs_peers": 2.0, "spread": 5.0}
    w = dict.fromkeys(FEATURES, 0.0) | {"prior": 1.0} | pushes
    model = LapseModel(90.0, tuple(w[name] for name in FEATURES), NOW, 500)
    a = assess(profile, Population(typical_gap_days=3.0), NOW, model)  # peers every 3 days
    assert a is not None
    assert set(a.drivers) == set(pushes)

    lines = [r.line for r in signals(a, EN)]
    assert lines[0].startswith("Usually orders every")  # the silence still leads
    for said in (
        "Their last orders came further apart than their usual rhythm.",
        "Their last orders were smaller than the ones before.",
        "They order less often than customers like them (every 7 days; customers like them "
        "every 3 days).",
        "Their orders come irregularly, with long breaks between bursts.",
    ):
        assert said in lines, lines
        assert said in a.why  # the CSV's and `score`'s why says the same
    chinese = [r.line for r in signals(a, ZH)]
    assert "最近几次下单的间隔比他们平时的节奏更长。" in chinese
    assert "他们下单比同类客户少（每 7 天 一次；同类客户每 3 天 一次）。" in chinese
    assert not [line for line in chinese if re.search("[A-Za-z]{3,}", line)], chinese

    # A decline line says it already: the driver is not said twice.
    halved = _orders([0.0, 7, 14, 21, 28, 35, 42, 49, 56], [100.0] * 6 + [50.0] * 3, 12)
    shrunk = assess(halved, Population(typical_gap_days=3.0), NOW, model)
    assert shrunk is not None and "value_trend" in shrunk.drivers
    words = " ".join(r.line for r in signals(shrunk, EN))
    assert "50% smaller than the ones before" in words
    assert "were smaller than the ones before" not in words


# -- value at risk ---------------------------------------------------------------------------


@given(
    per_year=st.floats(0, 10_000_000, allow_nan=False),
    share=st.floats(0, 1),
    zh=st.booleans(),
)
def test_the_value_at_risk_is_one_phrase_with_each_number_once(
    per_year: float, share: float, zh: bool
) -> None:
    t = ZH if zh else EN
    phrase = value_phrase(per_year * share, per_year, "EUR", t)
    amounts = re.findall(r"€[\d,]+", phrase)
    assert 1 <= len(amounts) <= 2
    assert len(set(amounts)) == len(amounts)  # never one number twice
    assert t.money(per_year * share, "EUR") in amounts  # the value at risk is always said


def test_the_value_at_risk_reads_as_a_rep_would_say_it() -> None:
    assert value_phrase(1200, 1500, "EUR", EN) == "€1,200 of their €1,500 a year"
    assert value_phrase(2607.2, 2607.4, "EUR", EN) == "€2,607 a year, all they spend"
    assert value_phrase(14597, 14610, "EUR", EN) == "€14,597 a year, nearly all they spend"
    assert value_phrase(1200, 1500, "EUR", ZH) == "其每年 €1,500 中的 €1,200"


# -- dialling --------------------------------------------------------------------------------


@given(st.text(max_size=40))
def test_any_phone_text_gives_a_dialable_link_or_none(phone: str) -> None:
    href = tel_href(phone)
    digits = re.sub(r"[^0-9]", "", phone)
    if href is None:
        assert not digits.lstrip("0") or not re.sub(r"\D", "", phone)
        return
    assert re.fullmatch(r"tel:\+?[0-9]+", href)
    assert href.lstrip("tel:+") in digits


def test_phone_numbers_as_people_write_them_are_dialled() -> None:
    assert tel_href("+49 170 555 0101") == "tel:+491705550101"
    assert tel_href("0049 (30) 123-4567") == "tel:+49301234567"
    assert tel_href("(555) 010-0100") == "tel:5550100100"
    assert tel_href("call the office") is None
    assert tel_href(None) is None
