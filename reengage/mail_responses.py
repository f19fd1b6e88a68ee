"""Responses that come by mail, recorded: bounces, complaints, replies and out-of-office
notes, classified by ``mailparse`` and handed over by the inbound listener or the mailbox
poll (``inbound``), each acted on through ``responses``.

What a mail says is believed only as far as it is about mail we sent: a bounce acts only
when it came to its message's signed VERP address, a complaint there or signed by a listed
feedback loop (``Arrival``; a Message-ID is no proof: replies quote it), and only on the
address that message went to; a reply is the customer's only when it answers our mail to
the address it comes from, and then ends the sequence it answers and waits for the rep; an
out-of-office is kept and changes nothing. Anything else is kept as unmatched (``reengage
inbound unmatched``) and acts on nobody.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from reengage.campaigns import ExitReason
from reengage.logs import get_logger
from reengage.mailparse import UNREADABLE, Inbound, InboundKind, normal_address
from reengage.models import ResponseKind
from reengage.responses import (
    Policy,
    Recorded,
    find_message,
    mismatch,
    opt_out,
    soft_bounce,
)
from reengage.store import Store
from reengage.store.responses import MessageRef

log = get_logger(__name__)


@dataclass(frozen=True)
class Arrival:
    """Where a report arrived and what vouches for it, as the receiver checked it.

    ``verp``: the message whose signed ``bounces+KEY.SIG@`` address (the envelope sender
    only our mail carries) the report was delivered to; ``problem`` says why an address
    of that shape names none (``bad_signature``, ``no_message``). ``reporter``: the domain
    of a listed feedback-loop provider whose DKIM signature on the report verified.
    """

    verp: MessageRef | None = None
    problem: str | None = None
    reporter: str | None = None


def record_inbound(
    store: Store,
    mail: Inbound,
    now: datetime,
    policy: Policy | None = None,
    arrival: Arrival | None = None,
) -> Recorded:
    """Act on one classified inbound mail (bounce, complaint, reply, out-of-office).

    A bounce acts only when it arrived at its message's signed bounce address; a complaint
    there too, or anywhere when a listed feedback loop signed it (``arrival``). A report
    elsewhere only names a Message-ID, which every reply and forward of our mail shows, so
    it is kept as unmatched and acts on nobody."""
    policy = policy or Policy()
    arrival = arrival or Arrival()
    ref = find_message(store, mail.token, mail.message_ids)
    kind = mail.kind
    named = tuple(dict.fromkeys(normal_address(a) for a in mail.recipients))
    if kind in (InboundKind.HARD_BOUNCE, InboundKind.SOFT_BOUNCE, InboundKind.COMPLAINT):
        response = _REPORTS[kind]
        # Feedback reports often redact the complainer's address (then the message says
        # who); one that names another address, plainly, is not about our recipient.
        if kind is InboundKind.COMPLAINT:
            named = tuple(a for a in named if not _REDACTED.search(a))
        problem: str | None
        if arrival.verp is not None:
            ref = arrival.verp
            problem = mismatch(ref, named)
        elif arrival.problem is not None:
            problem = arrival.problem
        elif kind is InboundKind.COMPLAINT and arrival.reporter is not None:
            ref = find_message(store, None, mail.message_ids)
            problem = mismatch(ref, named)
        else:
            problem = "unverified_complaint" if kind is InboundKind.COMPLAINT else "not_verp"
        if problem is not None or ref is None:
            _unmatched(
                store, now, "mail", response.value, problem or "no_message", ref, named, mail
            )
            return Recorded(response.value, "unmatched", ref)
        if kind is InboundKind.SOFT_BOUNCE:
            return soft_bounce(store, ref, mail.diagnostic, now, policy, None)
        detail = (
            mail.feedback_type if kind is InboundKind.COMPLAINT else mail.diagnostic or mail.status
        )
        return opt_out(store, response, ref, detail, now, "mail", None)
    if kind in (InboundKind.REPLY, InboundKind.AUTO_REPLY):
        return _reply(store, ref, mail, now, policy)
    if (mail.diagnostic or "").startswith(UNREADABLE):  # kept, so "250 recorded" holds
        _unmatched(store, now, "mail", kind.value, "unreadable", ref, named, mail)
        return Recorded(kind.value, "unmatched", ref)
    log.info("inbound_ignored", subject=mail.subject, sender=mail.sender)
    return Recorded(kind.value, "ignored", ref)


# How feedback loops write an address they redact: "redacted@example.com",
# "[redacted]", "xxxxxxxx@example.com", "*****@example.com".
_REDACTED = re.compile(r"redacted|^[x*#._-]*@", re.IGNORECASE)

_REPORTS = {
    InboundKind.HARD_BOUNCE: ResponseKind.BOUNCE,
    InboundKind.SOFT_BOUNCE: ResponseKind.SOFT_BOUNCE,
    InboundKind.COMPLAINT: ResponseKind.COMPLAINT,
}


def unmatched_unsubscribe(
    store: Store, now: datetime, reason: str, address: str, mail: Inbound | None = None
) -> Recorded:
    """A mail to an ``unsubscribe+`` address that is unsigned, or names no mail of ours."""
    _unmatched(store, now, "mail", ResponseKind.UNSUBSCRIBE.value, reason, None, (address,), mail)
    return Recorded(ResponseKind.UNSUBSCRIBE.value, "unmatched")


def _unmatched(
    store: Store,
    now: datetime,
    source: str,
    kind: str,
    reason: str,
    ref: MessageRef | None,
    named: Sequence[str],
    mail: Inbound | None,
) -> None:
    store.responses.add_unmatched(
        now,
        source=source,
        kind=kind,
        reason=reason,
        ref=ref,
        sender=mail.sender if mail else "",
        subject=mail.subject if mail else "",
        addresses=list(named),
        detail=(mail.diagnostic or mail.feedback_type or mail.original_subject) if mail else None,
    )
    log.warning(
        "inbound_unmatched",
        kind=kind,
        reason=reason,
        addresses=len(named),
        sender=mail.sender if mail else None,
    )


def _reply(
    store: Store, ref: MessageRef | None, mail: Inbound, now: datetime, policy: Policy
) -> Recorded:
    """A reply is the customer's only when it answers our mail and comes from the address
    that mail went to; otherwise it is kept unverified, out of every call list, acting on
    nothing (a colleague's forward, or a forgery)."""
    automatic = mail.kind is InboundKind.AUTO_REPLY
    kind = ResponseKind.AUTO_REPLY if automatic else ResponseKind.REPLY
    verified = ref is not None and normal_address(mail.sender) == normal_address(ref.email)
    if not verified or ref is None:
        unmatched = None
        if not automatic:  # out-of-office notes from a stand-in are common and harmless
            unmatched = {
                "source": "mail",
                "kind": kind.value,
                "reason": "other_address" if ref else "no_message",
                "ref": ref,
                "sender": mail.sender,
                "subject": mail.subject,
                "addresses": [mail.sender] if mail.sender else [],
                "detail": (mail.text or "")[:200],
            }
        store.responses.unverified_reply(
            ref,
            now,
            sender=mail.sender,
            subject=mail.subject,
            text=mail.text or "",
            automatic=automatic,
            unmatched=unmatched,
        )
        log.warning("reply_unverified", automatic=automatic, matched=ref is not None)
        return Recorded(kind.value, "unverified", ref)
    exited = store.responses.reply(
        ref,
        kind.value,
        now,
        sender=mail.sender,
        subject=mail.subject,
        text=mail.text or "",
        automatic=automatic,
        detail=mail.auto_reason if automatic else (mail.text or "")[:200],
        exits=not automatic and policy.exits(ref.campaign_id, ExitReason.REPLY),
    )
    log.info("reply_recorded", automatic=automatic, exited=exited)
    return Recorded(kind.value, "exited" if exited else "stored", ref)
