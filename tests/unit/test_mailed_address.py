"""What comes back about a mail acts on the address that mail went to, on ``FakeStore``: a
customer who changed address since keeps getting mail at the new one, and the old one is
suppressed when it bounces, complains or unsubscribes, whoever has it now. The contract
test (``tests/integration/test_ledger_contract.py``) holds the fake to the SQL."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from reengage.mail_responses import Arrival, record_inbound
from reengage.mailparse import InboundKind
from reengage.responses import ProviderEvent, record_provider_event, unsubscribe
from tests.fakes.worlds import NOW, FakeWorld, enrollments, inbound

OLD = "ana@xn--bcher-kva.example"
# How a report or a mail client may write the address we mailed: all of them are it.
OLD_SPELLINGS = st.sampled_from(
    [OLD, OLD.upper(), "<ana@bücher.example>", "ana@Bücher.example.", f" {OLD}\n"]
)
NEW = st.sampled_from(["ana@new.example", "ana@example.com", "ana.b@xn--bcher-kva.example"])
# The ways a report reaches us about the old mail, each an opt-out when it matches.
PATHS = st.sampled_from(
    ["webhook_bounce", "webhook_complaint", "webhook_unsubscribe", "dsn", "arf", "web"]
)
FAST = settings(max_examples=150, deadline=None)


def moved(new: str, heir: bool) -> tuple[FakeWorld, int, int | None]:
    """Ana mailed at OLD in ``tips``, then imported with ``new``; with ``heir``, another
    customer record has OLD now and runs ``winback``."""
    w = FakeWorld()
    cid = w.customer("c1", OLD, first_name="Ana")
    w.message(w.enrollment(cid, "tips"), "s1", "TOKEN0", message_id="<m0@acme>")
    w.change_email(cid, new)
    other = None
    if heir:
        other = w.customer("c2", OLD)
        w.enrollment(other, "winback")
    return w, cid, other


def report(w: FakeWorld, path: str, named: str | None, n: int) -> str:
    """One report about the old mail by ``path``, naming ``named`` (or no address)."""
    if path.startswith("webhook_"):
        event = ProviderEvent(f"e{n}", path.removeprefix("webhook_"), "TOKEN0", named)
        return record_provider_event(w.store, event, NOW).action
    if path == "web":
        ref = w.store.responses.message("TOKEN0")
        assert ref is not None
        unsubscribe(w.store, ref, NOW, source="page")
        return "suppressed"
    kind = InboundKind.HARD_BOUNCE if path == "dsn" else InboundKind.COMPLAINT
    mail = inbound(kind, message_ids=("m0@acme",), recipients=(named,) if named else ())
    # As delivered to the old mail's signed bounce address.
    at_verp = Arrival(w.store.responses.message("TOKEN0"))
    return record_inbound(w.store, mail, NOW, None, at_verp).action


@FAST
@given(
    new=NEW,
    heir=st.booleans(),
    paths=st.lists(PATHS, min_size=1, max_size=3),
    naming=st.one_of(st.none(), OLD_SPELLINGS),
)
def test_an_opt_out_about_an_old_mail_suppresses_the_old_address_and_an_unsubscribe_the_person(
    new: str, heir: bool, paths: list[str], naming: str | None
) -> None:
    w, cid, other = moved(new, heir)
    assert w.store.responses.message("TOKEN0").email == OLD  # type: ignore[union-attr]
    actions = [report(w, path, naming, n) for n, path in enumerate(paths)]
    assert set(actions) == {"suppressed"}
    person = {"webhook_unsubscribe", "web"} & set(paths)  # an unsubscribe is Ana's wish
    assert w.store.sending.suppressed_among([OLD, new]) == ({OLD, new} if person else {OLD})
    # a bounce or a complaint is about the old mailbox: Ana is mailed on, at her new one
    assert [status for _, status, _ in enrollments(w, cid)] == ["exited" if person else "active"]
    if other is not None:  # whoever has the old address now is mailed there no more
        assert [status for _, status, _ in enrollments(w, other)] == ["exited"]


@FAST
@given(new=NEW, path=PATHS.filter(lambda p: p != "web"))
def test_a_report_naming_the_customers_new_address_acts_on_nobody(new: str, path: str) -> None:
    w, cid, _ = moved(new, heir=False)
    assert report(w, path, new.upper(), 0) == "unmatched"
    assert w.store.sending.suppressed_among([OLD, new]) == set()
    assert enrollments(w, cid) == [("tips", "active", None)]
    assert w.store.responses.unmatched()[0][0].reason == "other_address"


@FAST
@given(new=NEW, old=OLD_SPELLINGS, first_from_old=st.booleans())
def test_a_reply_counts_only_from_the_address_mailed(
    new: str, old: str, first_from_old: bool
) -> None:
    w, cid, _ = moved(new, heir=False)
    senders = [old, new] if first_from_old else [new, old]
    actions = [
        record_inbound(
            w.store, inbound(InboundKind.REPLY, token="TOKEN0", sender=s, text="hi"), NOW
        ).action
        for s in senders
    ]
    by_sender = dict(zip(senders, actions, strict=True))
    assert by_sender[new] == "unverified"
    assert by_sender[old] == "exited"
    assert [r["sender"] for r in w.store.responses.replies()] == [old]
    assert enrollments(w, cid) == [("tips", "exited", "reply")]


@FAST
@given(new=NEW, to_old=st.lists(st.booleans(), max_size=7))
def test_soft_bounces_are_counted_per_address_mailed(new: str, to_old: list[bool]) -> None:
    w, cid, _ = moved(new, heir=False)
    w.message(w.enrollment(cid, "winback"), "s1", "TOKEN1")  # to her new address
    for day, old in enumerate(to_old):
        mail = inbound(InboundKind.SOFT_BOUNCE, token="TOKEN0" if old else "TOKEN1")
        at = Arrival(w.store.responses.message("TOKEN0" if old else "TOKEN1"))
        record_inbound(w.store, mail, NOW + timedelta(days=day), None, at)
    expected = {a for a, n in ((OLD, to_old.count(True)), (new, to_old.count(False))) if n >= 3}
    assert w.store.sending.suppressed_among([OLD, new]) == expected
