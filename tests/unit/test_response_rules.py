"""The trust rules of ``reengage/responses.py`` and ``reengage/mail_responses.py``, on
``FakeStore``: what a bounce, a complaint, a reply or a provider's event may act on, and how
often. No database: the contract test (``tests/integration/test_ledger_contract.py``) keeps
the fake honest."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reengage.campaigns import ExitReason
from reengage.mail_responses import Arrival, record_inbound, unmatched_unsubscribe
from reengage.mailparse import UNREADABLE, InboundKind
from reengage.responses import (
    PROVIDER_TYPES,
    Policy,
    ProviderEvent,
    record_click,
    record_provider_event,
    unsubscribe,
)
from tests.fakes.worlds import NOW, FakeWorld, enrollments, inbound, kinds

ANA = "ana@xn--bcher-kva.example"
# Ways reports and mail clients write Ana's address: all of them name her.
ANA_SPELLINGS = [
    ANA,
    ANA.upper(),
    "<ana@bücher.example>",
    "ana@Bücher.example.",
    f" {ANA}\n",
    "<Ana@XN--BCHER-KVA.example.>",
]
ANA_SPELLED = st.sampled_from(ANA_SPELLINGS)
# Addresses that are not hers, however close.
OTHERS = st.sampled_from(
    ["bob@example.com", "ana@example.com", "ana+x@xn--bcher-kva.example", "anna@bücher.example"]
)
# How feedback loops redact the complainer: never "another address".
REDACTED = st.sampled_from(
    ["redacted@example.com", "[REDACTED]", "xxxxxxxx@example.com", "*****@example.com"]
)
FAST = settings(max_examples=150, deadline=None)


def ana_world(*campaigns: str) -> tuple[FakeWorld, int]:
    w = FakeWorld()
    cid = w.customer("c1", ANA, first_name="Ana")
    for n, campaign in enumerate(campaigns or ("tips",)):
        w.message(w.enrollment(cid, campaign), "s1", f"TOKEN{n}", message_id=f"<m{n}@acme>")
    return w, cid


def suppressed(w: FakeWorld) -> bool:
    return w.store.sending.is_suppressed(ANA)


def at_verp(w: FakeWorld, token: str = "TOKEN0") -> Arrival:
    """What the receiver says of a report delivered to the message's signed bounce address."""
    return Arrival(verp=w.store.responses.message(token))


# -- which address a report may act on ----------------------------------------------------------


@FAST
@given(
    hers=st.lists(ANA_SPELLED, max_size=2),
    others=st.lists(OTHERS, max_size=3),
    quotes_id=st.booleans(),
)
def test_a_bounce_acts_only_when_it_names_no_address_or_names_hers(
    hers: list[str], others: list[str], quotes_id: bool
) -> None:
    w, cid = ana_world()
    found = record_inbound(
        w.store,
        inbound(
            InboundKind.HARD_BOUNCE,
            message_ids=("m0@acme",) if quotes_id else (),
            recipients=(*others, *hers),
            status="5.1.1",
        ),
        NOW,
        None,
        at_verp(w),
    )
    acts = bool(hers) or not others
    assert found.action == ("suppressed" if acts else "unmatched")
    assert suppressed(w) is acts
    assert enrollments(w, cid) == [
        ("tips", "exited" if acts else "active", "bounce" if acts else None)
    ]
    assert kinds(w) == (["bounce"] if acts else [])
    kept, total = w.store.responses.unmatched()
    assert total == (0 if acts else 1)
    if not acts:
        assert kept[0].reason == "other_address" and kept[0].message_id == found.message.id


@FAST
@given(
    hers=st.lists(ANA_SPELLED, max_size=1),
    redacted=st.lists(REDACTED, max_size=2),
    others=st.lists(OTHERS, max_size=2),
    signed=st.booleans(),
)
def test_a_complaint_ignores_redacted_addresses_but_not_another_real_one(
    hers: list[str], redacted: list[str], others: list[str], signed: bool
) -> None:
    """At the bounce address, or anywhere signed by a listed feedback loop."""
    w, _ = ana_world()
    mail = inbound(
        InboundKind.COMPLAINT, message_ids=("m0@acme",), recipients=(*redacted, *others, *hers),
        feedback_type="abuse",
    )  # fmt: skip
    arrival = Arrival(reporter="fbl.example") if signed else at_verp(w)
    found = record_inbound(w.store, mail, NOW, None, arrival)
    acts = bool(hers) or not others
    assert found.action == ("suppressed" if acts else "unmatched")
    assert suppressed(w) is acts


@pytest.mark.parametrize(
    "kind", [InboundKind.HARD_BOUNCE, InboundKind.SOFT_BOUNCE, InboundKind.COMPLAINT]
)
def test_a_report_about_no_mail_of_ours_is_kept_and_acts_on_nobody(kind: InboundKind) -> None:
    w, cid = ana_world()
    mail = inbound(kind, message_ids=("forged@acme",), recipients=(ANA,))
    found = record_inbound(w.store, mail, NOW, None, Arrival(reporter="fbl.example"))
    assert (found.action, found.message) == ("unmatched", None)
    reason = "no_message" if kind is InboundKind.COMPLAINT else "not_verp"
    assert w.store.responses.unmatched()[0][0].reason == reason
    assert not suppressed(w) and enrollments(w, cid) == [("tips", "active", None)]


@given(
    kind=st.sampled_from([InboundKind.HARD_BOUNCE, InboundKind.SOFT_BOUNCE, InboundKind.COMPLAINT]),
    arrival=st.sampled_from(
        [Arrival(), Arrival(problem="bad_signature"), Arrival(problem="no_message")]
    ),
    token=st.sampled_from([None, "TOKEN0"]),
)
def test_a_report_naming_our_message_but_not_at_its_bounce_address_acts_on_nobody(
    kind: InboundKind, arrival: Arrival, token: str | None
) -> None:
    """Our Message-ID (or the reply+ key) is in every reply and forward: naming it proves
    nothing, so a report that did not come to the signed bounce address, nor signed by a
    listed feedback loop, is kept and suppresses nobody however often it comes."""
    w, cid = ana_world()
    mail = inbound(kind, token=token, message_ids=("m0@acme",), recipients=(ANA,))
    for _ in range(4):
        assert record_inbound(w.store, mail, NOW, None, arrival).action == "unmatched"
    expected = arrival.problem or (
        "unverified_complaint" if kind is InboundKind.COMPLAINT else "not_verp"
    )
    kept, total = w.store.responses.unmatched()
    assert total == 4 and {k.reason for k in kept} == {expected}
    assert not suppressed(w) and enrollments(w, cid) == [("tips", "active", None)]
    assert kinds(w) == []


def test_an_unreadable_mail_is_kept_and_anything_else_unknown_is_ignored() -> None:
    w, _ = ana_world()
    unreadable = inbound(InboundKind.UNKNOWN, diagnostic=f"{UNREADABLE}: bad MIME")
    assert record_inbound(w.store, unreadable, NOW).action == "unmatched"
    assert record_inbound(w.store, inbound(InboundKind.UNKNOWN), NOW).action == "ignored"
    [kept], total = w.store.responses.unmatched()
    assert (kept.reason, total) == ("unreadable", 1)


def test_an_unsigned_mailto_unsubscribe_is_kept_for_review() -> None:
    w, _ = ana_world()
    found = unmatched_unsubscribe(w.store, NOW, "bad_signature", ANA)
    assert (found.kind, found.action) == ("unsubscribe", "unmatched")
    assert w.store.responses.unmatched()[0][0].addresses == ANA
    assert not suppressed(w)


# -- soft bounces ---------------------------------------------------------------------------


@FAST
@given(
    limit=st.integers(min_value=1, max_value=4),
    days_ago=st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=6),
)
def test_soft_bounces_suppress_once_limit_of_them_fall_within_30_days(
    limit: int, days_ago: list[int]
) -> None:
    w, cid = ana_world()
    policy = Policy(soft_bounce_limit=limit)
    mail = inbound(InboundKind.SOFT_BOUNCE, token="TOKEN0", recipients=(ANA,))
    when = [NOW - timedelta(days=d) for d in sorted(days_ago, reverse=True)]
    actions = [record_inbound(w.store, mail, at, policy, at_verp(w)).action for at in when]
    for n, at in enumerate(when):
        recent = sum(1 for earlier in when[: n + 1] if earlier >= at - timedelta(days=30))
        assert actions[n] == ("suppressed" if recent >= limit else "stored")
    assert suppressed(w) is ("suppressed" in actions)
    ended = "suppressed" in actions
    assert enrollments(w, cid) == [
        ("tips", "exited" if ended else "active", "bounce" if ended else None)
    ]
    assert kinds(w) == ["soft_bounce"] * len(when)


# -- replies --------------------------------------------------------------------------------


@FAST
@given(
    sender=st.one_of(ANA_SPELLED, OTHERS),
    automatic=st.booleans(),
    exit_on=st.one_of(st.none(), st.lists(st.sampled_from(list(ExitReason)), unique=True)),
)
def test_a_reply_is_hers_only_from_her_address_and_exits_only_as_the_campaign_says(
    sender: str, automatic: bool, exit_on: list[ExitReason] | None
) -> None:
    w, cid = ana_world("tips", "winback")
    policy = Policy(exit_on=lambda c: exit_on if c == "winback" else None)
    kind = InboundKind.AUTO_REPLY if automatic else InboundKind.REPLY
    mail = inbound(kind, token="TOKEN1", sender=sender, subject="Re: hi", text="call me")
    found = record_inbound(w.store, mail, NOW, policy)
    hers = sender in ANA_SPELLINGS
    exits = hers and not automatic and (exit_on is None or ExitReason.REPLY in exit_on)
    if not hers:
        assert found.action == "unverified"
        assert w.store.responses.replies() == []
        assert [r["status"] for r in w.store.responses.replies(None)] == ["unverified"]
        assert w.store.responses.unmatched()[1] == (0 if automatic else 1)  # OOO: too common
    else:
        assert found.action == ("exited" if exits else "stored")
        assert kinds(w) == [kind.value]
    waiting = w.store.calls.waiting_replies(NOW - timedelta(days=1))
    assert len(waiting) == (1 if hers and not automatic else 0)
    assert enrollments(w, cid) == [
        ("tips", "active", None),
        ("winback", "exited", "reply") if exits else ("winback", "active", None),
    ]


def test_a_reply_to_no_mail_of_ours_waits_for_nobody() -> None:
    w, _ = ana_world()
    found = record_inbound(w.store, inbound(InboundKind.REPLY, sender=ANA, text="hi"), NOW)
    assert (found.action, found.message) == ("unverified", None)
    assert w.store.responses.unmatched()[0][0].reason == "no_message"
    assert w.store.calls.waiting_replies(NOW - timedelta(days=1)) == []


@FAST
@given(exit_on=st.one_of(st.none(), st.lists(st.sampled_from(list(ExitReason)), unique=True)))
def test_a_click_exits_only_where_the_campaign_lists_click(
    exit_on: list[ExitReason] | None,
) -> None:
    w, cid = ana_world()
    record_click(w.store, "TOKEN0", "https://acme.example", NOW, Policy(exit_on=lambda c: exit_on))
    exits = exit_on is not None and ExitReason.CLICK in exit_on
    assert enrollments(w, cid) == [
        ("tips", "exited" if exits else "active", "click" if exits else None)
    ]
    assert kinds(w) == ["click", "open"]


# -- providers' webhooks ----------------------------------------------------------------------

EVENTS = st.builds(
    ProviderEvent,
    id=st.sampled_from(["e1", "e2", "e3"]),
    type=st.sampled_from(PROVIDER_TYPES),
    message=st.sampled_from([None, "TOKEN0", "<m0@acme>", "<nope@acme>"]),
    recipient=st.one_of(st.none(), ANA_SPELLED, OTHERS),
)


@FAST
@given(events=st.lists(EVENTS, min_size=1, max_size=6))
def test_each_provider_event_id_is_acted_on_once(events: list[ProviderEvent]) -> None:
    w, _ = ana_world()
    acted_on: set[str] = set()
    for event in events:
        found = record_provider_event(w.store, event, NOW)
        if event.id in acted_on:
            assert found.action == "duplicate"
        # Not kept: an event naming no message of ours.
        if found.action not in ("unknown_message", "duplicate"):
            acted_on.add(event.id)
    logged = [r for r in w.store.tables.responses if (r.dedupe_key or "").startswith("provider:")]
    kept = [u for u in w.store.tables.unmatched if (u.dedupe_key or "").startswith("provider:")]
    keys = [x.dedupe_key for x in logged + kept]
    assert len(keys) == len(set(keys))


@FAST
@given(event=EVENTS)
def test_an_event_that_stops_mail_acts_only_on_the_address_of_the_message_it_names(
    event: ProviderEvent,
) -> None:
    w, cid = ana_world()
    found = record_provider_event(w.store, event, NOW)
    ours = event.message in ("TOKEN0", "<m0@acme>")
    hers = event.recipient is None or event.recipient in ANA_SPELLINGS
    if event.type in ("bounce", "complaint", "unsubscribe"):
        assert suppressed(w) is (ours and hers)
        assert [e[1] for e in enrollments(w, cid)] == ["exited" if ours and hers else "active"]
        assert found.action == ("suppressed" if ours and hers else "unmatched")
    elif event.type == "soft_bounce":
        assert found.action == ("stored" if ours and hers else "unmatched")
    else:
        assert found.action == ("stored" if ours else "unknown_message")
        assert not suppressed(w)


def test_a_retried_unsubscribe_event_is_a_duplicate() -> None:
    w, _ = ana_world()
    event = ProviderEvent("e9", "unsubscribe", "TOKEN0", ANA)
    assert record_provider_event(w.store, event, NOW).action == "suppressed"
    assert record_provider_event(w.store, event, NOW).action == "duplicate"


def test_a_person_who_unsubscribes_again_is_heard_again_but_a_retried_event_is_not() -> None:
    w, _ = ana_world()
    ref = w.store.responses.message("TOKEN0")
    assert ref is not None
    record_provider_event(w.store, ProviderEvent("e1", "unsubscribe", "TOKEN0", ANA), NOW)
    w.store.tables.suppressions.clear()  # the operator lifted the suppression
    again = record_provider_event(w.store, ProviderEvent("e1", "unsubscribe", "TOKEN0", ANA), NOW)
    assert again.action == "duplicate" and not suppressed(w)
    unsubscribe(w.store, ref, NOW, source="link")  # the person clicks the link once more
    assert suppressed(w)
