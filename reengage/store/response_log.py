"""``store.responses``: the door the response use cases go through, one transaction a call.

The SQL is in :mod:`reengage.store.responses`; each state change a response brings (a
click, an unsubscribe, a pause, a bounce, a complaint, a reply) is one method here, so
no raw connection leaves the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.addresses import normalize_or_keep
from reengage.models import ResponseKind
from reengage.store.enrollments import end_enrollments
from reengage.store.inbound_log import (
    Unmatched,
    add_unmatched,
    claim_mail,
    mail_outcome,
    mail_was_ours,
    unmatched,
)
from reengage.store.responses import (
    MessageRef,
    ResponseRow,
    add_reply,
    count_since,
    count_to,
    customer_ids_by_email,
    kinds_by_enrollment,
    mark_bounced,
    message_by_smtp_ids,
    message_by_token,
    messages_by_folded_token,
    opt_out_address,
    pause,
    recent,
    record,
    replies,
    seen,
)
from reengage.store.tables import CUSTOMERS


class ResponseLog:
    """``store.responses``: each call is one transaction, like the rest of ``Store``."""

    def __init__(self, tx: Callable[[], AbstractContextManager[Connection]]) -> None:
        self._tx = tx

    def message(self, token: str) -> MessageRef | None:
        """The message a link or a VERP address names."""
        with self._tx() as conn:
            return message_by_token(conn, token)

    def message_by_smtp_ids(self, message_ids: Sequence[str]) -> MessageRef | None:
        """Our message among Message-IDs an inbound mail refers to."""
        with self._tx() as conn:
            return message_by_smtp_ids(conn, message_ids)

    def messages_by_folded_token(self, token: str) -> list[MessageRef]:
        """Messages whose token matches ``token`` but for case (see the function)."""
        with self._tx() as conn:
            return messages_by_folded_token(conn, token)

    def add_unmatched(self, now: datetime, **fields: Any) -> bool:
        """Keep an inbound mail or event for review (see :func:`add_unmatched`)."""
        with self._tx() as conn:
            return add_unmatched(conn, now, **fields)

    def seen(self, dedupe_key: str) -> bool:
        """Whether an event with this key was recorded, or kept as unmatched, already."""
        with self._tx() as conn:
            return seen(conn, dedupe_key)

    def claim_mail(self, key: str, now: datetime, source: str) -> bool:
        """Note a mailbox's mail as recorded, False when it was already: call it inside
        ``Store.atomic`` with the recording, so both are committed or neither."""
        with self._tx() as conn:
            return claim_mail(conn, key, now, source)

    def mail_outcome(self, key: str, outcome: str, *, ours: bool) -> None:
        """Say what a claimed mail did (inside the same ``Store.atomic``)."""
        with self._tx() as conn:
            mail_outcome(conn, key, outcome, ours)

    def mail_was_ours(self, key: str) -> bool | None:
        """Whether a mail recorded before named a mail of ours (None: never recorded)."""
        with self._tx() as conn:
            return mail_was_ours(conn, key)

    def unmatched(self, limit: int = 50) -> tuple[list[Unmatched], int]:
        """The newest unmatched inbound records and their total."""
        with self._tx() as conn:
            return unmatched(conn, limit)

    def customers_by_email(self, email: str) -> list[int]:
        """Customer ids with this address."""
        with self._tx() as conn:
            return customer_ids_by_email(conn, email)

    def customer_external_id(self, email: str) -> str | None:
        """The external id of a customer with this address (the demo's shoppers)."""
        with self._tx() as conn:
            query = sa.select(CUSTOMERS.c.external_id).where(
                sa.func.lower(CUSTOMERS.c.email) == email.lower()
            )
            return conn.scalars(query).first()

    def record(self, kind: str, now: datetime, **fields: Any) -> bool:
        """Log one response (see :func:`record`)."""
        with self._tx() as conn:
            return record(conn, kind, now, **fields)

    def count_since(self, customer_id: int, kind: str, since: datetime) -> int:
        """How many ``kind`` responses a customer had since ``since``."""
        with self._tx() as conn:
            return count_since(conn, customer_id, kind, since)

    def recent(self, since: datetime, limit: int = 1000) -> list[ResponseRow]:
        """Responses since ``since``, oldest first."""
        with self._tx() as conn:
            return recent(conn, since, limit)

    def kinds_by_enrollment(
        self, enrollment_ids: Iterable[int]
    ) -> dict[int, set[tuple[str | None, str]]]:
        """What each enrollment's customer did with its mails: ``(step_key, kind)`` pairs."""
        with self._tx() as conn:
            return kinds_by_enrollment(conn, enrollment_ids)

    def replies(self, status: str | None = "new") -> list[dict[str, Any]]:
        """Stored replies."""
        with self._tx() as conn:
            return replies(conn, status=status)

    # -- what a response does: each one state change, in one transaction --------------------

    def click(self, ref: MessageRef, url: str, now: datetime, *, exits: bool) -> None:
        """Log a click and the open it proves; with ``exits``, end the sequence it answers."""
        with self._tx() as conn:
            record(conn, ResponseKind.CLICK.value, now, source="web", ref=ref, detail=url)
            record(
                conn,
                ResponseKind.OPEN.value,
                now,
                source="web",
                ref=ref,
                dedupe_key=f"open:{ref.id}",
            )
            if exits:
                end_enrollments(
                    conn, "click", now, customer_id=ref.customer_id, campaign_ids=[ref.campaign_id]
                )

    def unsubscribe(
        self,
        ref: MessageRef,
        reason: str,
        detail: str,
        now: datetime,
        *,
        source: str,
        event_key: str | None = None,
    ) -> int | None:
        """Suppress the address, end what runs for everyone who has it and log it once;
        returns how many enrollments ended. The customer the mail was for is asking too:
        when their address changed since, the new one is suppressed as well (a bounce or a
        complaint is about a mailbox; an unsubscribe is a person's wish). A person who asks
        again is heard again (the operator may have lifted the suppression since); an event
        under ``event_key`` (a provider's event id) is acted on once, and None says it was
        already."""
        with self._tx() as conn:
            logged = record(
                conn,
                ResponseKind.UNSUBSCRIBE.value,
                now,
                source=source,
                ref=ref,
                dedupe_key=event_key or f"unsubscribe:{ref.id}",
            )
            if event_key is not None and not logged:
                return None
            exited = opt_out_address(conn, ref.email, reason, detail, now)
            current = conn.scalar(
                sa.select(CUSTOMERS.c.email).where(CUSTOMERS.c.id == ref.customer_id)
            )
            now_at = normalize_or_keep(current) if current else None
            if now_at and now_at != ref.email:
                exited += opt_out_address(conn, now_at, reason, detail, now)
            return exited

    def pause(self, ref: MessageRef, until: datetime, now: datetime, *, detail: str) -> None:
        """Keep the customer out of campaigns until ``until``, end what runs, log it once."""
        with self._tx() as conn:
            pause(conn, ref.customer_id, until)
            end_enrollments(conn, "paused", now, customer_id=ref.customer_id)
            record(
                conn,
                ResponseKind.PAUSE.value,
                now,
                source="web",
                ref=ref,
                detail=detail,
                dedupe_key=f"pause:{ref.id}",
            )

    def opt_out(
        self,
        kind: str,
        ref: MessageRef,
        reason: str,
        detail: str | None,
        now: datetime,
        *,
        source: str,
        dedupe_key: str | None,
    ) -> int | None:
        """A hard bounce or a complaint: log it (None when it was logged already), mark a
        bounced message, suppress the address and end its customers' enrollments; returns
        how many ended."""
        with self._tx() as conn:
            if not record(
                conn, kind, now, source=source, ref=ref, detail=detail, dedupe_key=dedupe_key
            ):
                return None
            if kind == ResponseKind.BOUNCE.value:
                mark_bounced(conn, ref.id, detail)
            return opt_out_address(conn, ref.email, reason, detail, now)

    def soft_bounce(
        self,
        ref: MessageRef,
        diagnostic: str | None,
        now: datetime,
        *,
        source: str,
        dedupe_key: str | None,
        since: datetime,
        limit: int,
        reason: str,
        detail: Callable[[int], str],
    ) -> int | None:
        """Log a soft bounce (None when it was logged already) and count the customer's since
        ``since`` of mail to the address ``ref`` went to; from ``limit`` on, opt that address
        out with ``detail(count)``. Returns the count."""
        with self._tx() as conn:
            if not record(
                conn,
                ResponseKind.SOFT_BOUNCE.value,
                now,
                source=source,
                ref=ref,
                detail=diagnostic,
                dedupe_key=dedupe_key,
            ):
                return None
            count = count_to(conn, ref, ResponseKind.SOFT_BOUNCE.value, since)
            if count >= limit:
                opt_out_address(conn, ref.email, reason, detail(count), now)
            return count

    def reply(
        self,
        ref: MessageRef,
        kind: str,
        now: datetime,
        *,
        sender: str,
        subject: str,
        text: str,
        automatic: bool,
        detail: str | None,
        exits: bool,
    ) -> int:
        """Keep a verified reply for the rep and log it; with ``exits``, end the sequence it
        answers. Returns how many enrollments ended."""
        with self._tx() as conn:
            add_reply(
                conn,
                ref,
                customer_id=None,
                sender=sender,
                subject=subject,
                text=text,
                automatic=automatic,
                now=now,
            )
            record(conn, kind, now, source="mail", ref=ref, detail=detail)
            if not exits:
                return 0
            return end_enrollments(
                conn, "reply", now, customer_id=ref.customer_id, campaign_ids=[ref.campaign_id]
            )

    def unverified_reply(
        self,
        ref: MessageRef | None,
        now: datetime,
        *,
        sender: str,
        subject: str,
        text: str,
        automatic: bool,
        unmatched: dict[str, Any] | None,
    ) -> None:
        """Keep a reply that is not the customer's out of every call list, acting on nothing;
        with ``unmatched``, keep it for review too (see :func:`add_unmatched`)."""
        with self._tx() as conn:
            add_reply(
                conn,
                ref,
                customer_id=None,
                sender=sender,
                subject=subject,
                text=text,
                automatic=automatic,
                now=now,
                status="unverified",
            )
            if unmatched is not None:
                add_unmatched(conn, now, **unmatched)
