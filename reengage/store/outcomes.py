"""A call outcome in SQL: stored once under its dedupe key, and what it does, in the same
transaction — the calls it answers closed, the replies answered, the customer marked do not
contact, enrollments ended or begun, a call again put on the list.

What an outcome does is decided by :mod:`reengage.digest.outcomes` (:class:`OutcomeActs`);
:mod:`reengage.store.corrections` carries the acts out again when the rep corrects one.
``store.calls`` (:mod:`reengage.store.call_book`) is the door.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.models import CallOutcome, CallTaskStatus, CustomerStatus
from reengage.store.engine import upsert_insert
from reengage.store.enrollments import NewEnrollment, end_enrollments, insert_enrollments
from reengage.store.tables import CALLS, CUSTOMERS, OUTCOMES, REPLIES


@dataclass(frozen=True)
class OutcomeActs:
    """What saving one call outcome does besides storing it (decided by the digest's rules)."""

    customer_id: int
    close_calls_as: CallTaskStatus
    answer_replies: bool
    do_not_contact: bool = False
    end_reason: str | None = None  # end the customer's running enrollments with this reason
    end_campaigns: tuple[str, ...] | None = None  # only these campaigns' (None: all)
    enroll: NewEnrollment | None = None  # the follow-up the rep chose
    call_again: tuple[str, datetime] | None = None  # a high-priority call: reason, due


@dataclass(frozen=True)
class SavedOutcome:
    """What :func:`save_outcome` did: ``new`` False when the outcome was already recorded
    under its dedupe key (then nothing else was done)."""

    new: bool
    ended: int
    outcome: CallOutcome | None
    # The customer was do-not-contact when the outcome was saved: no follow-up was started
    # and no call again was set, whatever the rep chose.
    refused_do_not_contact: bool = False


@dataclass(frozen=True)
class Carried:
    """What :func:`carry_out` did: enrollments ended, and whether the customer's standing
    do-not-contact refused the follow-up or the call again the outcome asked for."""

    ended: int
    refused_do_not_contact: bool = False


def save_outcome(
    conn: Connection, values: dict[str, Any], acts: OutcomeActs, now: datetime
) -> SavedOutcome:
    """Store the outcome and carry out ``acts``, in the caller's one transaction."""
    dedupe_key = values.get("dedupe_key")
    # Locked before anything is written: a do-not-contact saved at the same moment either
    # commits first (and is read below) or waits for this one (and ends what it started).
    lock_customer(conn, acts.customer_id)
    if insert_outcome(conn, values) is None:
        return SavedOutcome(False, 0, outcome_by_key(conn, dedupe_key or ""))
    done = carry_out(conn, acts, now)
    saved = outcome_by_key(conn, dedupe_key) if dedupe_key else None
    return SavedOutcome(True, done.ended, saved, done.refused_do_not_contact)


def lock_customer(conn: Connection, customer_id: int) -> bool:
    """Lock the customer's row for this transaction and say whether they are do not contact.

    PostgreSQL: ``SELECT … FOR UPDATE`` (a concurrent outcome waits, then reads the committed
    status). SQLite has no row locks: a write that changes nothing takes the database's write
    lock first, so the status read after it cannot go stale before this transaction ends."""
    if conn.dialect.name == "sqlite":
        conn.execute(
            CUSTOMERS.update()
            .where(CUSTOMERS.c.id == customer_id)
            .values(status=CUSTOMERS.c.status)
        )
    query = sa.select(CUSTOMERS.c.status).where(CUSTOMERS.c.id == customer_id)
    if conn.dialect.name != "sqlite":
        query = query.with_for_update()
    status = conn.execute(query).scalar()
    return status == CustomerStatus.DO_NOT_CONTACT.value


def carry_out(conn: Connection, acts: OutcomeActs, now: datetime) -> Carried:
    """Do what an outcome does besides being stored: never a follow-up or a call again for a
    customer who is do not contact (read under :func:`lock_customer`)."""
    customer_id = acts.customer_id
    refused = False
    if not acts.do_not_contact and (acts.enroll is not None or acts.call_again is not None):
        refused = lock_customer(conn, customer_id)
        if refused:
            acts = replace(acts, enroll=None, call_again=None)
    close_calls(conn, customer_id, acts.close_calls_as)
    if acts.answer_replies:
        answer_replies(conn, customer_id)
    if acts.do_not_contact:
        do_not_contact(conn, customer_id, now)
    ended = 0
    if acts.end_reason is not None:
        ended = end_enrollments(
            conn, acts.end_reason, now, customer_id=customer_id, campaign_ids=acts.end_campaigns
        )
    if acts.enroll is not None:
        insert_enrollments(conn, [acts.enroll], now)
    if acts.call_again is not None:
        reason, due = acts.call_again
        add_call(conn, customer_id, reason, "high", due, now)
    return Carried(ended, refused)


def insert_outcome(conn: Connection, values: dict[str, Any]) -> int | None:
    """Store an outcome; None when one with the same ``dedupe_key`` is already there."""
    insert = upsert_insert(conn.dialect.name, OUTCOMES).values(**values)
    query = insert.on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(OUTCOMES.c.id)
    row = conn.execute(query).first()
    return None if row is None else int(row[0])


def outcome_by_key(conn: Connection, dedupe_key: str) -> CallOutcome | None:
    """The outcome recorded under ``dedupe_key``."""
    row = conn.execute(sa.select(OUTCOMES).where(OUTCOMES.c.dedupe_key == dedupe_key)).first()
    return None if row is None else CallOutcome.model_validate(dict(row._mapping))


def close_calls(conn: Connection, customer_id: int, status: CallTaskStatus) -> int:
    """Every open call of this customer is done (or cancelled)."""
    result = conn.execute(
        CALLS.update()
        .where(CALLS.c.customer_id == customer_id, CALLS.c.status == CallTaskStatus.OPEN.value)
        .values(status=status.value)
    )
    return result.rowcount or 0


def answer_replies(conn: Connection, customer_id: int) -> None:
    """The rep has spoken to the customer: their waiting replies are answered."""
    conn.execute(
        REPLIES.update()
        .where(REPLIES.c.customer_id == customer_id, REPLIES.c.status == "new")
        .values(status="answered")
    )


def add_call(
    conn: Connection, customer_id: int, reason: str, priority: str, due_at: datetime, now: datetime
) -> None:
    """Put a call on the customer's rep's list for ``due_at`` (a "call again")."""
    conn.execute(
        CALLS.insert().values(
            customer_id=customer_id,
            reason=reason[:300],
            priority=priority,
            due_at=due_at,
            status=CallTaskStatus.OPEN.value,
            created_at=now,
        )
    )


def do_not_contact(conn: Connection, customer_id: int, now: datetime) -> None:
    """Mark the customer "do not contact": no campaign, no digest, ever, until changed."""
    conn.execute(
        CUSTOMERS.update()
        .where(CUSTOMERS.c.id == customer_id)
        .values(status=CustomerStatus.DO_NOT_CONTACT.value, updated_at=now)
    )


def outcomes_since(conn: Connection, since: datetime | None) -> list[CallOutcome]:
    """Call outcomes recorded since ``since`` (all when None), oldest first."""
    query = sa.select(OUTCOMES).order_by(OUTCOMES.c.called_at, OUTCOMES.c.id)
    if since is not None:
        query = query.where(OUTCOMES.c.called_at >= since)
    return [CallOutcome.model_validate(dict(row._mapping)) for row in conn.execute(query)]
