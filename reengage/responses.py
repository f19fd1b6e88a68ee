"""What customers did after a mail, recorded: the use cases behind the web side and
providers' webhooks, and the acting every response shares (``mail_responses`` records what
comes by mail).

Each response is logged against the message it answers (found by the opaque token in a
link or a VERP address, or by the Message-ID a reply or bounce quotes) and acted on in the
same transaction: an unsubscribe or a complaint suppresses the address the message went
to (not the customer's address now, if it changed since) and ends every running
enrollment of whoever has that address; a hard bounce does the same and marks the
message bounced; soft bounces suppress only once they repeat; "pause for 90 days" ends
what is running and keeps the customer out of new campaigns until then.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from reengage.campaigns import ExitReason
from reengage.logs import get_logger
from reengage.mailparse import normal_address
from reengage.models import ResponseKind
from reengage.store import Store
from reengage.store.responses import MessageRef

log = get_logger(__name__)

SOFT_BOUNCE_PERIOD = timedelta(days=30)


@dataclass(frozen=True)
class Policy:
    """How responses are acted on; the daemon builds it from settings and campaigns."""

    soft_bounce_limit: int = 3
    pause_days: int = 90
    # A campaign's ``exit_on`` by id; None (or an unknown campaign): the default reasons.
    exit_on: Callable[[str], Collection[str] | None] | None = None

    def exits(self, campaign_id: str, reason: ExitReason) -> bool:
        """Whether ``reason`` ends an enrollment in this campaign."""
        reasons = self.exit_on(campaign_id) if self.exit_on else None
        if reasons is None:
            return reason is not ExitReason.CLICK  # the campaign default: all but a click
        return reason.value in {str(r) for r in reasons}


# -- web: opens, clicks, unsubscribes, pauses ------------------------------------------------


def message(store: Store, key: str) -> MessageRef | None:
    """The message a link names (None for a key we never sent)."""
    return store.responses.message(key)


def record_open(store: Store, key: str, now: datetime) -> bool:
    """Count the first open of a message; later opens of the same mail change nothing."""
    ref = store.responses.message(key)
    if ref is None:
        return False
    return store.responses.record(
        ResponseKind.OPEN.value, now, source="web", ref=ref, dedupe_key=f"open:{ref.id}"
    )


def record_click(
    store: Store, key: str, url: str, now: datetime, policy: Policy | None = None
) -> MessageRef | None:
    """Log a click on ``url`` (a click also proves the mail was opened)."""
    policy = policy or Policy()
    ref = store.responses.message(key)
    if ref is None:
        return None
    store.responses.click(ref, url, now, exits=policy.exits(ref.campaign_id, ExitReason.CLICK))
    log.info("click_recorded", message_id=ref.id, campaign=ref.campaign_id, step=ref.step_key)
    return ref


def unsubscribe(
    store: Store, ref: MessageRef, now: datetime, *, source: str, event_key: str | None = None
) -> int | None:
    """Suppress the address across every campaign and end what is running; returns how
    many enrollments ended. Doing it twice is harmless; a provider's event (``event_key``)
    is acted on once however often it is retried, and None says this one was a retry."""
    exited = store.responses.unsubscribe(
        ref,
        ExitReason.UNSUBSCRIBE.value,
        f"{source}: {ref.campaign_id}/{ref.step_key}",
        now,
        source=source,
        event_key=event_key,
    )
    if exited is None:
        return None
    log.info("unsubscribed", message_id=ref.id, campaign=ref.campaign_id, exited=exited)
    return exited


def pause(store: Store, ref: MessageRef, now: datetime, policy: Policy | None = None) -> datetime:
    """Stop all mail to this customer for ``pause_days``; returns when mail may resume."""
    policy = policy or Policy()
    until = now + timedelta(days=policy.pause_days)
    store.responses.pause(ref, until, now, detail=f"until {until.date().isoformat()}")
    log.info("paused", message_id=ref.id, until=until.isoformat())
    return until


# -- inbound mail and providers' webhooks ----------------------------------------------------
#
# Inbound mail comes from anyone who can reach the port, and a webhook from anyone holding
# its token: what either says is believed only as far as it is about mail we sent. A bounce
# by mail acts only when it came to its message's signed VERP address, a complaint there or
# signed by a listed feedback loop (``mail_responses.Arrival``; a Message-ID is no proof:
# replies quote it), and only on the address that message went to; a reply is the
# customer's only when it answers our mail to the address it comes from. Anything else is
# kept as unmatched (``reengage inbound unmatched``) and acts on nobody.


@dataclass(frozen=True)
class Recorded:
    """What became of one inbound mail or webhook event."""

    kind: str
    # suppressed, exited, stored, ignored, duplicate, unknown_message, unmatched, unverified
    action: str
    message: MessageRef | None = None


@dataclass(frozen=True)
class ProviderEvent:
    """One event from an email provider's webhook, in reengage's own shape."""

    id: str
    type: str  # bounce, soft_bounce, complaint, delivered, open, click, unsubscribe
    message: str | None = None  # our Message-ID, or the message token
    recipient: str | None = None
    detail: str | None = None


PROVIDER_TYPES = ("bounce", "soft_bounce", "complaint", "delivered", "open", "click", "unsubscribe")
_OPT_OUTS = {"bounce": ResponseKind.BOUNCE, "complaint": ResponseKind.COMPLAINT}


def record_provider_event(
    store: Store, event: ProviderEvent, now: datetime, policy: Policy | None = None
) -> Recorded:
    """Act on a provider's event once, however often the provider retries it.

    An event that would stop mail (bounce, complaint, unsubscribe) acts only on the
    address of the message it names; naming another recipient, or no message of ours,
    it is kept as unmatched.
    """
    policy = policy or Policy()
    key = f"provider:{event.id}"
    if store.responses.seen(key):  # acted on, or kept as unmatched, before
        return Recorded(event.type, "duplicate")
    ref = find_message(store, _token_of(event.message), [event.message] if event.message else [])
    recipient = normal_address(event.recipient) if event.recipient else None
    if event.type in ("bounce", "soft_bounce", "complaint", "unsubscribe"):
        problem = mismatch(ref, (recipient,) if recipient else ())
        if problem is not None or ref is None:
            kept = store.responses.add_unmatched(
                now,
                source="webhook",
                kind=event.type,
                reason=problem or "no_message",
                ref=ref,
                addresses=[recipient] if recipient else [],
                detail=f"event {event.id}: {event.detail or ''}; message {event.message or '-'}",
                dedupe_key=key,
            )
            if not kept:
                return Recorded(event.type, "duplicate", ref)
            log.warning("provider_event_unmatched", event_id=event.id, reason=problem)
            return Recorded(event.type, "unmatched", ref)
        if event.type in _OPT_OUTS:
            return opt_out(store, _OPT_OUTS[event.type], ref, event.detail, now, "webhook", key)
        if event.type == "soft_bounce":
            return soft_bounce(store, ref, event.detail, now, policy, key)
        if unsubscribe(store, ref, now, source="webhook", event_key=key) is None:
            return Recorded(event.type, "duplicate", ref)
        return Recorded(event.type, "suppressed", ref)
    if ref is None:
        log.warning("provider_event_unknown_message", event_id=event.id, message=event.message)
        return Recorded(event.type, "unknown_message")
    kind = {"delivered": ResponseKind.DELIVERED, "open": ResponseKind.OPEN}.get(
        event.type, ResponseKind.CLICK
    )
    inserted = store.responses.record(
        kind.value, now, source="webhook", ref=ref, detail=event.detail, dedupe_key=key
    )
    return Recorded(event.type, "stored" if inserted else "duplicate", ref)


def _token_of(message: str | None) -> str | None:
    """A token from ``<TOKEN@domain>`` (our Message-IDs) or a bare token."""
    if not message:
        return None
    return message.strip().strip("<>").split("@", 1)[0] or None


# -- acting on a report about our message (shared with ``mail_responses``) -------------------


def find_message(
    store: Store, token: str | None, message_ids: Collection[str]
) -> MessageRef | None:
    """The message a report names: by its token (a link, a VERP address, our Message-ID)
    or else by any of the Message-IDs it quotes (None when it names no mail of ours)."""
    ref = store.responses.message(token) if token else None
    if ref is None and message_ids:
        ref = store.responses.message_by_smtp_ids(list(message_ids))
    return ref


def mismatch(ref: MessageRef | None, named: Collection[str]) -> str | None:
    """Why a report cannot act: no message of ours, or it names addresses but not the one
    our message went to (None when it may act on ``ref.email``)."""
    if ref is None:
        return "no_message"
    if named and normal_address(ref.email) not in named:
        return "other_address"
    return None


def opt_out(
    store: Store,
    kind: ResponseKind,
    ref: MessageRef,
    detail: str | None,
    now: datetime,
    source: str,
    dedupe_key: str | None,
) -> Recorded:
    """A hard bounce or a complaint about our message: log it once, suppress the address
    it went to, end its enrollments (a bounce also marks the message bounced)."""
    reason = ExitReason.BOUNCE if kind is ResponseKind.BOUNCE else ExitReason.COMPLAINT
    exited = store.responses.opt_out(
        kind.value, ref, reason.value, detail, now, source=source, dedupe_key=dedupe_key
    )
    if exited is None:
        return Recorded(kind.value, "duplicate", ref)
    say = log.warning if kind is ResponseKind.COMPLAINT else log.info  # complaints hurt delivery
    say(f"{kind.value}_recorded", message_id=ref.id, exited=exited, detail=detail)
    return Recorded(kind.value, "suppressed", ref)


def soft_bounce(
    store: Store,
    ref: MessageRef,
    diagnostic: str | None,
    now: datetime,
    policy: Policy,
    dedupe_key: str | None,
) -> Recorded:
    """A temporary failure of our message: counted, and suppressing once it repeats."""
    count = store.responses.soft_bounce(
        ref,
        diagnostic,
        now,
        source="webhook" if dedupe_key else "mail",
        dedupe_key=dedupe_key,
        since=now - SOFT_BOUNCE_PERIOD,
        limit=policy.soft_bounce_limit,
        reason=ExitReason.BOUNCE.value,
        detail=lambda count: f"{count} soft bounces in 30 days; last: {diagnostic or 'no detail'}",
    )
    if count is None:
        return Recorded("soft_bounce", "duplicate", ref)
    if count < policy.soft_bounce_limit:
        return Recorded("soft_bounce", "stored", ref)
    log.info("soft_bounces_suppressed", message_id=ref.id, count=count)
    return Recorded("soft_bounce", "suppressed", ref)
