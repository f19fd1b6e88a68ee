"""What happened after a send, in SQL: the responses log, replies, exits, pauses.

Conversions (activities credited to a campaign) are in :mod:`reengage.store.conversions`.

Every response names the message it answers when one is known (through the message's
opaque token or its Message-ID), and through it the enrollment, campaign and step, so
funnels and lift need no joins back through the sending tables. A response that may
arrive twice (a provider retrying a webhook, an activity imported again, a second open of
the same mail) carries a ``dedupe_key`` under a unique constraint: the repeat is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.models import (
    MessageStatus,
)
from reengage.store.engine import insert_once
from reengage.store.enrollments import end_enrollments
from reengage.store.suppressions import suppress
from reengage.store.tables import (
    CUSTOMERS,
    MESSAGES,
    REPLIES,
    RESPONSES,
    UNMATCHED,
)
from reengage.timeutil import as_utc


@dataclass(frozen=True)
class MessageRef:
    """A sent message and who it went to: what a link, a bounce or a reply points at.

    ``email`` is the address the message was sent to (its row's ``recipient``), which may
    no longer be the customer's; a message from before migration 0007 does not know it and
    gives the customer's current address. The name and locale are the customer's now.
    """

    id: int
    token: str
    enrollment_id: int
    customer_id: int
    campaign_id: str
    step_key: str
    status: str
    email: str
    first_name: str | None
    last_name: str | None
    company: str | None
    locale: str
    paused_until: datetime | None


@dataclass(frozen=True)
class ResponseRow:
    """One recorded response, for reports and the demo."""

    kind: str
    occurred_at: datetime
    customer_id: int | None
    email: str | None
    campaign_id: str | None
    step_key: str | None
    source: str
    detail: str | None
    value: float | None


def _mailed() -> sa.ColumnElement[str]:
    """The address a message went to; rows from before 0007 name none: the customer's now."""
    return sa.func.coalesce(MESSAGES.c.recipient, CUSTOMERS.c.email)


_REF_COLUMNS = (
    MESSAGES.c.id,
    MESSAGES.c.token,
    MESSAGES.c.enrollment_id,
    MESSAGES.c.customer_id,
    MESSAGES.c.campaign_id,
    MESSAGES.c.step_key,
    MESSAGES.c.status,
    _mailed().label("email"),
    CUSTOMERS.c.first_name,
    CUSTOMERS.c.last_name,
    CUSTOMERS.c.company,
    CUSTOMERS.c.locale,
    CUSTOMERS.c.paused_until,
)


def _ref_query() -> sa.Select[Any]:
    return sa.select(*_REF_COLUMNS).join(CUSTOMERS, CUSTOMERS.c.id == MESSAGES.c.customer_id)


def _ref(row: Any) -> MessageRef:
    fields: dict[str, Any] = dict(row._mapping)
    paused = fields.pop("paused_until")
    return MessageRef(**fields, paused_until=as_utc(paused) if paused else None)


def message_by_token(conn: Connection, token: str) -> MessageRef | None:
    """The message whose links or Return-Path carry ``token``."""
    row = conn.execute(_ref_query().where(MESSAGES.c.token == token)).first()
    return _ref(row) if row else None


def message_by_smtp_ids(conn: Connection, message_ids: Sequence[str]) -> MessageRef | None:
    """The first of our messages among these Message-IDs (with or without angle brackets)."""
    wanted = {f"<{m.strip('<>')}>" for m in message_ids if m.strip("<>")}
    if not wanted:
        return None
    row = conn.execute(_ref_query().where(MESSAGES.c.message_id.in_(sorted(wanted)))).first()
    return _ref(row) if row else None


def messages_by_folded_token(conn: Connection, token: str) -> list[MessageRef]:
    """Messages whose token, lower-cased, is ``token``: an MTA that lower-cased an address
    (RFC 5321 lets it) still names the message. Scans; call only for a signed address."""
    query = _ref_query().where(sa.func.lower(MESSAGES.c.token) == token.lower()).limit(5)
    return [_ref(row) for row in conn.execute(query)]


def customer_ids_by_email(conn: Connection, email: str) -> list[int]:
    """Customers with this address (an address may belong to several customer records)."""
    query = sa.select(CUSTOMERS.c.id).where(sa.func.lower(CUSTOMERS.c.email) == email.lower())
    return list(conn.scalars(query))


def record(
    conn: Connection,
    kind: str,
    now: datetime,
    *,
    source: str,
    ref: MessageRef | None = None,
    customer_id: int | None = None,
    detail: str | None = None,
    value: float | None = None,
    dedupe_key: str | None = None,
    credit: tuple[int, str, int | None, str | None] | None = None,
) -> bool:
    """Log one response; False when ``dedupe_key`` says it was already recorded.

    It names the message ``ref``, or with ``credit`` an ``(enrollment_id, campaign_id,
    message_id, step_key)`` that is not a message (a conversion of a holdout member).
    """
    enrollment, campaign, message, step = credit or (None, None, None, None)
    values = {
        "kind": kind,
        "message_id": ref.id if ref else message,
        "enrollment_id": ref.enrollment_id if ref else enrollment,
        "customer_id": ref.customer_id if ref else customer_id,
        "campaign_id": ref.campaign_id if ref else campaign,
        "step_key": ref.step_key if ref else step,
        "occurred_at": now,
        "source": source,
        "detail": detail[:500] if detail else None,
        "value": value,
        "dedupe_key": dedupe_key,
    }
    return insert_once(conn, RESPONSES, values)


def pause(conn: Connection, customer_id: int, until: datetime) -> None:
    """No campaign enrolls this customer before ``until``."""
    conn.execute(CUSTOMERS.update().where(CUSTOMERS.c.id == customer_id).values(paused_until=until))


def mark_bounced(conn: Connection, message_id: int, diagnostic: str | None) -> None:
    """A sent message bounced later (a DSN or a provider said so)."""
    conn.execute(
        MESSAGES.update()
        .where(MESSAGES.c.id == message_id)
        .values(status=MessageStatus.BOUNCED.value, smtp_response=(diagnostic or "")[:500])
    )


def count_since(conn: Connection, customer_id: int, kind: str, since: datetime) -> int:
    """How many ``kind`` responses this customer had since ``since``."""
    query = sa.select(sa.func.count()).where(
        RESPONSES.c.customer_id == customer_id,
        RESPONSES.c.kind == kind,
        RESPONSES.c.occurred_at >= since,
    )
    return int(conn.scalar(query) or 0)


def count_to(conn: Connection, ref: MessageRef, kind: str, since: datetime) -> int:
    """How many ``kind`` responses this customer's mails to ``ref.email`` (the address
    ``ref`` went to) had since ``since``: an address's own soft bounces, never those of an
    address the customer had before."""
    query = (
        sa.select(sa.func.count())
        .select_from(RESPONSES)
        .join(MESSAGES, MESSAGES.c.id == RESPONSES.c.message_id)
        .join(CUSTOMERS, CUSTOMERS.c.id == MESSAGES.c.customer_id)
        .where(
            RESPONSES.c.customer_id == ref.customer_id,
            RESPONSES.c.kind == kind,
            RESPONSES.c.occurred_at >= since,
            _mailed() == ref.email,
        )
    )
    return int(conn.scalar(query) or 0)


def add_reply(
    conn: Connection,
    ref: MessageRef | None,
    *,
    customer_id: int | None,
    sender: str,
    subject: str,
    text: str,
    automatic: bool,
    now: datetime,
    status: str = "new",
) -> int:
    """Keep a reply's text for the rep; returns its id. An ``unverified`` one (it answers
    no mail we sent to its sender) never reaches a call list: those read ``new`` only."""
    result = conn.execute(
        REPLIES.insert().values(
            message_id=ref.id if ref else None,
            customer_id=ref.customer_id if ref else customer_id,
            campaign_id=ref.campaign_id if ref else None,
            sender=sender[:320],
            subject=subject[:300],
            text=text,
            automatic=automatic,
            status=status,
            received_at=now,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]  # set by an insert


def seen(conn: Connection, dedupe_key: str) -> bool:
    """Whether an event with this key was recorded, or kept as unmatched, already."""
    for table in (RESPONSES, UNMATCHED):
        found = conn.execute(
            sa.select(table.c.id).where(table.c.dedupe_key == dedupe_key).limit(1)
        ).first()
        if found is not None:
            return True
    return False


def recent(conn: Connection, since: datetime, limit: int = 1000) -> list[ResponseRow]:
    """Responses since ``since``, oldest first, with the customer's address."""
    query = (
        sa.select(
            RESPONSES.c.kind,
            RESPONSES.c.occurred_at,
            RESPONSES.c.customer_id,
            CUSTOMERS.c.email,
            RESPONSES.c.campaign_id,
            RESPONSES.c.step_key,
            RESPONSES.c.source,
            RESPONSES.c.detail,
            RESPONSES.c.value,
        )
        .outerjoin(CUSTOMERS, CUSTOMERS.c.id == RESPONSES.c.customer_id)
        .where(RESPONSES.c.occurred_at >= since)
        .order_by(RESPONSES.c.occurred_at, RESPONSES.c.id)
        .limit(limit)
    )
    return [ResponseRow(r[0], as_utc(r[1]), *r[2:]) for r in conn.execute(query)]


def replies(conn: Connection, *, status: str | None = "new") -> list[dict[str, Any]]:
    """Stored replies (human ones first), newest first."""
    query = sa.select(REPLIES).order_by(REPLIES.c.automatic, REPLIES.c.received_at.desc())
    if status is not None:
        query = query.where(REPLIES.c.status == status)
    return [dict(row._mapping) for row in conn.execute(query)]


# -- conversions ---------------------------------------------------------------------------


def kinds_by_enrollment(
    conn: Connection, enrollment_ids: Iterable[int]
) -> dict[int, set[tuple[str | None, str]]]:
    """``(step_key, kind)`` of every response to each of these enrollments' mails."""
    ids = sorted(set(enrollment_ids))
    found: dict[int, set[tuple[str | None, str]]] = {}
    for start in range(0, len(ids), 10_000):
        query = (
            sa.select(RESPONSES.c.enrollment_id, RESPONSES.c.step_key, RESPONSES.c.kind)
            .where(RESPONSES.c.enrollment_id.in_(ids[start : start + 10_000]))
            .distinct()
        )
        for enrollment_id, step_key, kind in conn.execute(query):
            found.setdefault(enrollment_id, set()).add((step_key, kind))
    return found


# -- the door use cases go through ---------------------------------------------------------


def opt_out_address(
    conn: Connection, email: str, reason: str, detail: str | None, now: datetime
) -> int:
    """Suppress one address (the one a message went to) and end the running enrollments of
    every customer who has it now; returns how many ended. Nobody may have it any more (the
    customer changed address since): it is suppressed all the same, so it is never mailed
    again, and the customer's new address is left alone."""
    suppress(conn, email, reason, detail, now)
    return sum(
        end_enrollments(conn, reason, now, customer_id=customer_id)
        for customer_id in customer_ids_by_email(conn, email)
    )
