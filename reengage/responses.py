"""What customers did after a mail, recorded: the use cases behind the web side, inbound
mail and providers' webhooks.

Each response is logged against the message it answers (found by the opaque token in a
link or a VERP address, or by the Message-ID a reply or bounce quotes) and acted on in the
same transaction: an unsubscribe or a complaint suppresses the address and ends every
running enrollment; a hard bounce does the same and marks the message bounced; soft
bounces suppress only once they repeat; a reply ends the sequence it answers and waits
for the rep; an out-of-office is kept and changes nothing; "pause for 90 days" ends
what is running and keeps the customer out of new campaigns until then.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from reengage.campaigns import ExitReason
from reengage.logs import get_logger
from reengage.mailparse import Inbound, InboundKind
from reengage.models import ResponseKind
from reengage.store import Store
from reengage.store import responses as sql
from reengage.store.responses import MessageRef
from reengage.store.sending import suppress

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

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
    with store.responses.transaction() as conn:
        sql.record(conn, ResponseKind.CLICK.value, now, source="web", ref=ref, detail=url)
        sql.record(
            conn, ResponseKind.OPEN.value, now, source="web", ref=ref, dedupe_key=f"open:{ref.id}"
        )
        if policy.exits(ref.campaign_id, ExitReason.CLICK):
            sql.exit_active(conn, ref.customer_id, "click", now, ref.campaign_id)
    log.info("click_recorded", message_id=ref.id, campaign=ref.campaign_id, step=ref.step_key)
    return ref


def unsubscribe(store: Store, ref: MessageRef, now: datetime, *, source: str) -> int:
    """Suppress the address across every campaign and end what is running; returns how
    many enrollments ended. Doing it twice is harmless."""
    with store.responses.transaction() as conn:
        exited = _suppress_and_exit(
            conn,
            [ref.email],
            ExitReason.UNSUBSCRIBE.value,
            f"{source}: {ref.campaign_id}/{ref.step_key}",
            now,
        )
        sql.record(
            conn,
            ResponseKind.UNSUBSCRIBE.value,
            now,
            source=source,
            ref=ref,
            dedupe_key=f"unsubscribe:{ref.id}",
        )
    log.info("unsubscribed", message_id=ref.id, campaign=ref.campaign_id, exited=exited)
    return exited


def pause(store: Store, ref: MessageRef, now: datetime, policy: Policy | None = None) -> datetime:
    """Stop all mail to this customer for ``pause_days``; returns when mail may resume."""
    policy = policy or Policy()
    until = now + timedelta(days=policy.pause_days)
    with store.responses.transaction() as conn:
        sql.pause(conn, ref.customer_id, until)
        sql.exit_active(conn, ref.customer_id, "paused", now)
        sql.record(
            conn,
            ResponseKind.PAUSE.value,
            now,
            source="web",
            ref=ref,
            detail=f"until {until.date().isoformat()}",
            dedupe_key=f"pause:{ref.id}",
        )
    log.info("paused", message_id=ref.id, until=until.isoformat())
    return until


# -- inbound mail and providers' webhooks ----------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """What became of one inbound mail or webhook event."""

    kind: str
    action: str  # suppressed, exited, stored, ignored, duplicate, unknown_message
    message: MessageRef | None = None


def record_inbound(
    store: Store, mail: Inbound, now: datetime, policy: Policy | None = None
) -> Recorded:
    """Act on one classified inbound mail (bounce, complaint, reply, out-of-office)."""
    policy = policy or Policy()
    ref = _find(store, mail.token, mail.message_ids)
    kind = mail.kind
    if kind is InboundKind.HARD_BOUNCE:
        detail = mail.diagnostic or mail.status
        return _opt_out(store, ResponseKind.BOUNCE, ref, mail.recipients, detail, now, "mail", None)
    if kind is InboundKind.SOFT_BOUNCE:
        return _soft_bounce(store, ref, mail.recipients, mail.diagnostic, now, policy, None)
    if kind is InboundKind.COMPLAINT:
        return _opt_out(
            store,
            ResponseKind.COMPLAINT,
            ref,
            mail.recipients,
            mail.feedback_type,
            now,
            "mail",
            None,
        )
    if kind in (InboundKind.REPLY, InboundKind.AUTO_REPLY):
        return _reply(store, ref, mail, now, policy)
    log.info("inbound_ignored", subject=mail.subject, sender=mail.sender)
    return Recorded(kind.value, "ignored", ref)


@dataclass(frozen=True)
class ProviderEvent:
    """One event from an email provider's webhook, in reengage's own shape."""

    id: str
    type: str  # bounce, soft_bounce, complaint, delivered, open, click, unsubscribe
    message: str | None = None  # our Message-ID, or the message token
    recipient: str | None = None
    detail: str | None = None


PROVIDER_TYPES = ("bounce", "soft_bounce", "complaint", "delivered", "open", "click", "unsubscribe")


def record_provider_event(
    store: Store, event: ProviderEvent, now: datetime, policy: Policy | None = None
) -> Recorded:
    """Act on a provider's event once, however often the provider retries it."""
    policy = policy or Policy()
    key = f"provider:{event.id}"
    ref = _find(store, _token_of(event.message), [event.message] if event.message else [])
    recipients = (event.recipient.lower(),) if event.recipient else ()
    if event.type == "bounce":
        return _opt_out(
            store, ResponseKind.BOUNCE, ref, recipients, event.detail, now, "webhook", key
        )
    if event.type == "soft_bounce":
        return _soft_bounce(store, ref, recipients, event.detail, now, policy, key)
    if event.type == "complaint":
        return _opt_out(
            store, ResponseKind.COMPLAINT, ref, recipients, event.detail, now, "webhook", key
        )
    if event.type == "unsubscribe" and ref is not None:  # idempotent by itself
        unsubscribe(store, ref, now, source="webhook")
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


def _find(store: Store, token: str | None, message_ids: Collection[str]) -> MessageRef | None:
    ref = store.responses.message(token) if token else None
    if ref is None and message_ids:
        ref = store.responses.message_by_smtp_ids(list(message_ids))
    return ref


def _token_of(message: str | None) -> str | None:
    """A token from ``<TOKEN@domain>`` (our Message-IDs) or a bare token."""
    if not message:
        return None
    return message.strip().strip("<>").split("@", 1)[0] or None


def _opt_out(
    store: Store,
    kind: ResponseKind,
    ref: MessageRef | None,
    recipients: Collection[str],
    detail: str | None,
    now: datetime,
    source: str,
    dedupe_key: str | None,
) -> Recorded:
    """A hard bounce or a complaint: log it once, suppress the addresses, end their
    enrollments (a bounce also marks its message bounced)."""
    emails = list(recipients) or ([ref.email] if ref else [])
    reason = ExitReason.BOUNCE if kind is ResponseKind.BOUNCE else ExitReason.COMPLAINT
    with store.responses.transaction() as conn:
        if not sql.record(
            conn,
            kind.value,
            now,
            source=source,
            ref=ref,
            customer_id=_customer_of(conn, ref, emails),
            detail=detail,
            dedupe_key=dedupe_key,
        ):
            return Recorded(kind.value, "duplicate", ref)
        if ref is not None and kind is ResponseKind.BOUNCE:
            sql.mark_bounced(conn, ref.id, detail)
        exited = _suppress_and_exit(conn, emails, reason.value, detail, now)
    say = log.warning if kind is ResponseKind.COMPLAINT else log.info  # complaints hurt delivery
    say(f"{kind.value}_recorded", emails=emails, exited=exited, detail=detail)
    return Recorded(kind.value, "suppressed" if emails else "stored", ref)


def _soft_bounce(
    store: Store,
    ref: MessageRef | None,
    recipients: Collection[str],
    diagnostic: str | None,
    now: datetime,
    policy: Policy,
    dedupe_key: str | None,
) -> Recorded:
    emails = list(recipients) or ([ref.email] if ref else [])
    with store.responses.transaction() as conn:
        customer = _customer_of(conn, ref, emails)
        if not sql.record(
            conn,
            ResponseKind.SOFT_BOUNCE.value,
            now,
            source="webhook" if dedupe_key else "mail",
            ref=ref,
            customer_id=customer,
            detail=diagnostic,
            dedupe_key=dedupe_key,
        ):
            return Recorded("soft_bounce", "duplicate", ref)
        count = (
            sql.count_since(
                conn, customer, ResponseKind.SOFT_BOUNCE.value, now - SOFT_BOUNCE_PERIOD
            )
            if customer is not None
            else 0
        )
        if count < policy.soft_bounce_limit:
            return Recorded("soft_bounce", "stored", ref)
        detail = f"{count} soft bounces in 30 days; last: {diagnostic or 'no detail'}"
        _suppress_and_exit(conn, emails, ExitReason.BOUNCE.value, detail, now)
    log.info("soft_bounces_suppressed", emails=emails, count=count)
    return Recorded("soft_bounce", "suppressed", ref)


def _reply(
    store: Store, ref: MessageRef | None, mail: Inbound, now: datetime, policy: Policy
) -> Recorded:
    automatic = mail.kind is InboundKind.AUTO_REPLY
    kind = ResponseKind.AUTO_REPLY if automatic else ResponseKind.REPLY
    with store.responses.transaction() as conn:
        customer = _customer_of(conn, ref, [mail.sender] if mail.sender else [])
        sql.add_reply(
            conn,
            ref,
            customer_id=customer,
            sender=mail.sender,
            subject=mail.subject,
            text=mail.text or "",
            automatic=automatic,
            now=now,
        )
        sql.record(
            conn,
            kind.value,
            now,
            source="mail",
            ref=ref,
            customer_id=customer,
            detail=mail.auto_reason if automatic else (mail.text or "")[:200],
        )
        exited = 0
        if not automatic and ref is not None and policy.exits(ref.campaign_id, ExitReason.REPLY):
            exited = sql.exit_active(conn, ref.customer_id, "reply", now, ref.campaign_id)
    log.info("reply_recorded", automatic=automatic, matched=ref is not None, exited=exited)
    return Recorded(kind.value, "exited" if exited else "stored", ref)


def _customer_of(conn: Connection, ref: MessageRef | None, emails: Collection[str]) -> int | None:
    if ref is not None:
        return ref.customer_id
    for email in emails:
        found = sql.customer_ids_by_email(conn, email)
        if found:
            return found[0]
    return None


def _suppress_and_exit(
    conn: Connection, emails: Collection[str], reason: str, detail: str | None, now: datetime
) -> int:
    exited = 0
    for email in emails:
        suppress(conn, email, reason, detail, now)
        for customer_id in sql.customer_ids_by_email(conn, email):
            exited += sql.exit_active(conn, customer_id, reason, now)
    return exited
