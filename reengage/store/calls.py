"""The reps' side in SQL: the call list's inputs and the call tasks campaigns put on it.

A call outcome and what it does are in :mod:`reengage.store.outcomes`; the morning digests'
rows in :mod:`reengage.store.digests`; ``store.calls`` (:mod:`reengage.store.call_book`) is
the door to all three.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.models import (
    CallTaskStatus,
    EnrollmentStatus,
    MessageStatus,
    Rep,
)
from reengage.store.claims import Claimed
from reengage.store.engine import upsert_insert
from reengage.store.tables import (
    CALLS,
    CUSTOMERS,
    ENROLLMENTS,
    MESSAGES,
    OUTCOMES,
    REPLIES,
    REPS,
    RESPONSES,
)

_CHUNK = 10_000


@dataclass(frozen=True)
class OpenCall:
    """A call waiting on a rep: a campaign's call step, or a "call again" the rep set."""

    id: int
    customer_id: int
    campaign_id: str | None
    step_key: str | None
    reason: str
    priority: str
    due_at: datetime
    created_at: datetime


@dataclass(frozen=True)
class WaitingReply:
    """A person's reply to a mail that nobody has answered yet."""

    customer_id: int
    subject: str
    text: str
    received_at: datetime


@dataclass(frozen=True)
class PastCall:
    """The last call outcome recorded for a customer."""

    customer_id: int
    called_at: datetime
    rep_external_id: str | None
    reached: str
    contact_name: str | None
    reason: str | None
    reason_text: str | None
    scope: str | None
    win_back: str | None
    worth: str
    next_step: str
    call_again_on: date | None


@dataclass(frozen=True)
class Touch:
    """Something reengage did, or a response to it: a mail sent, opened, clicked, replied."""

    customer_id: int
    kind: str  # "sent", or a response kind (open, click, reply, unsubscribe, ...)
    at: datetime
    campaign_id: str | None
    step_key: str | None
    detail: str | None


@dataclass(frozen=True)
class CallFacts:
    """What decides whether a customer may go on a call list at all."""

    rep_external_id: str | None
    status: str
    paused_until: datetime | None


# -- the list's inputs ---------------------------------------------------------------------


# What an OpenCall and a WaitingReply are read from (here and in rep_calls).
CALL_COLUMNS = (
    CALLS.c.id,
    CALLS.c.customer_id,
    CALLS.c.campaign_id,
    CALLS.c.step_key,
    CALLS.c.reason,
    CALLS.c.priority,
    CALLS.c.due_at,
    CALLS.c.created_at,
)
REPLY_COLUMNS = (REPLIES.c.customer_id, REPLIES.c.subject, REPLIES.c.text, REPLIES.c.received_at)


def open_calls(conn: Connection, customer_ids: Iterable[int] | None = None) -> list[OpenCall]:
    """Every open call (or only these customers'), earliest due first."""
    query = (
        sa.select(*CALL_COLUMNS)
        .where(CALLS.c.status == CallTaskStatus.OPEN.value)
        .order_by(CALLS.c.due_at, CALLS.c.id)
    )
    if customer_ids is not None:
        query = query.where(CALLS.c.customer_id.in_(sorted(set(customer_ids))))
    return [OpenCall(*row) for row in conn.execute(query)]


def waiting_replies(
    conn: Connection, since: datetime, customer_ids: Iterable[int] | None = None
) -> list[WaitingReply]:
    """Replies by people (not auto-replies) since ``since`` still waiting, oldest first."""
    query = (
        sa.select(*REPLY_COLUMNS)
        .where(
            REPLIES.c.status == "new",
            REPLIES.c.automatic.is_(False),
            REPLIES.c.customer_id.is_not(None),
            REPLIES.c.received_at >= since,
        )
        .order_by(REPLIES.c.received_at, REPLIES.c.id)
    )
    if customer_ids is not None:
        query = query.where(REPLIES.c.customer_id.in_(sorted(set(customer_ids))))
    return [WaitingReply(*row) for row in conn.execute(query)]


# What a :class:`PastCall` is read from (one call outcome).
PAST_CALL_COLUMNS = (
    OUTCOMES.c.customer_id,
    OUTCOMES.c.called_at,
    OUTCOMES.c.rep_external_id,
    OUTCOMES.c.reached,
    OUTCOMES.c.contact_name,
    OUTCOMES.c.reason,
    OUTCOMES.c.reason_text,
    OUTCOMES.c.scope,
    OUTCOMES.c.win_back,
    OUTCOMES.c.worth,
    OUTCOMES.c.next_step,
    OUTCOMES.c.call_again_on,
)


def last_calls(conn: Connection, customer_ids: Iterable[int] | None = None) -> dict[int, PastCall]:
    """Each customer's most recent call outcome (of these customers, or of everyone)."""
    newest = (
        sa.select(
            OUTCOMES.c.customer_id, sa.func.max(OUTCOMES.c.called_at).label("called_at")
        ).group_by(OUTCOMES.c.customer_id)
    ).subquery()
    query = sa.select(*PAST_CALL_COLUMNS).join(
        newest,
        (newest.c.customer_id == OUTCOMES.c.customer_id)
        & (newest.c.called_at == OUTCOMES.c.called_at),
    )
    found: dict[int, PastCall] = {}
    chunks = _chunks(customer_ids) if customer_ids is not None else [None]
    for chunk in chunks:
        part = query if chunk is None else query.where(OUTCOMES.c.customer_id.in_(chunk))
        for row in conn.execute(part.order_by(OUTCOMES.c.id)):
            found[row.customer_id] = PastCall(**row._mapping)
    return found


def call_facts(conn: Connection, customer_ids: Iterable[int]) -> dict[int, CallFacts]:
    """Rep, status and pause of these customers."""
    found: dict[int, CallFacts] = {}
    for chunk in _chunks(customer_ids):
        query = sa.select(
            CUSTOMERS.c.id,
            CUSTOMERS.c.rep_external_id,
            CUSTOMERS.c.status,
            CUSTOMERS.c.paused_until,
        ).where(CUSTOMERS.c.id.in_(chunk))
        for row in conn.execute(query):
            found[row.id] = CallFacts(row.rep_external_id, row.status, row.paused_until)
    return found


def touches(conn: Connection, customer_ids: Iterable[int], since: datetime) -> list[Touch]:
    """Mails sent to these customers since ``since``, and the responses to anything."""
    ids = sorted(set(customer_ids))
    if not ids:
        return []
    sent = sa.select(
        MESSAGES.c.customer_id,
        sa.literal("sent"),
        MESSAGES.c.sent_at,
        MESSAGES.c.campaign_id,
        MESSAGES.c.step_key,
        sa.null(),
    ).where(
        MESSAGES.c.customer_id.in_(ids),
        MESSAGES.c.status.in_([MessageStatus.SENT.value, MessageStatus.BOUNCED.value]),
        MESSAGES.c.sent_at >= since,
    )
    responded = sa.select(
        RESPONSES.c.customer_id,
        RESPONSES.c.kind,
        RESPONSES.c.occurred_at,
        RESPONSES.c.campaign_id,
        RESPONSES.c.step_key,
        RESPONSES.c.detail,
    ).where(RESPONSES.c.customer_id.in_(ids), RESPONSES.c.occurred_at >= since)
    rows = [Touch(*row) for row in conn.execute(sa.union_all(sent, responded))]
    return sorted(rows, key=lambda t: (t.customer_id, t.at))


def active_campaigns(conn: Connection, customer_id: int) -> list[str]:
    """The campaigns this customer is running through now."""
    query = sa.select(ENROLLMENTS.c.campaign_id).where(
        ENROLLMENTS.c.customer_id == customer_id,
        ENROLLMENTS.c.status == EnrollmentStatus.ACTIVE.value,
    )
    return list(conn.scalars(query))


def reps(conn: Connection, external_ids: Iterable[str] | None = None) -> list[Rep]:
    """Reps (all, or these), by external id."""
    query = sa.select(REPS).order_by(REPS.c.external_id)
    if external_ids is not None:
        query = query.where(REPS.c.external_id.in_(sorted(set(external_ids))))
    return [Rep.model_validate(dict(row._mapping)) for row in conn.execute(query)]


# -- call tasks ------------------------------------------------------------------------------


def add_call_task(
    conn: Connection, claimed: Claimed, step_key: str, reason: str, priority: str, now: datetime
) -> None:
    """Put the customer on their rep's call list (once per enrollment and step)."""
    insert = upsert_insert(conn.dialect.name, CALLS)
    conn.execute(
        insert.values(
            enrollment_id=claimed.enrollment_id,
            customer_id=claimed.customer_id,
            campaign_id=claimed.campaign_id,
            step_key=step_key,
            reason=reason,
            priority=priority,
            due_at=now,
            status="open",
            created_at=now,
        ).on_conflict_do_nothing(index_elements=["enrollment_id", "step_key"])
    )


def _chunks(ids: Iterable[int]) -> list[list[int]]:
    ordered = sorted(set(ids))
    return [ordered[i : i + _CHUNK] for i in range(0, len(ordered), _CHUNK)]
