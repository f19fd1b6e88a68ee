"""Claims and leases: which worker may act on an enrollment or a message row, and until when.

An enrollment due a step is claimed for a short lease (``SKIP LOCKED`` on PostgreSQL); a
message row is held under the lease of the worker that wrote it. A live worker renews
both; a dead one's claims come back when they run out: a ``queued`` row is due again at
once (nothing went out), a ``sending`` one becomes ``unknown`` and waits for a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.models import EnrollmentStatus, MessageStatus
from reengage.store.enrollments import hold
from reengage.store.tables import CUSTOMERS, ENROLLMENTS, MESSAGES


@dataclass(frozen=True)
class Claimed:
    """An enrollment whose next step is due, claimed by this process for a while."""

    enrollment_id: int
    customer_id: int
    campaign_id: str
    next_step: int
    next_step_key: str | None
    enrolled_at: datetime
    last_step_at: datetime | None
    email: str
    consent: bool
    status: str
    timezone: str | None


def claim_due(conn: Connection, now: datetime, limit: int, lease: timedelta) -> list[Claimed]:
    """Claim up to ``limit`` enrollments whose next step is due, for ``lease``.

    One UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING id: atomic on SQLite (a single
    writer), and with FOR UPDATE SKIP LOCKED on PostgreSQL so workers on several machines
    take different rows instead of waiting for each other.
    """
    due = (
        sa.select(ENROLLMENTS.c.id)
        .where(
            ENROLLMENTS.c.status == EnrollmentStatus.ACTIVE.value,
            ENROLLMENTS.c.next_due_at <= now,
            sa.or_(ENROLLMENTS.c.claimed_until.is_(None), ENROLLMENTS.c.claimed_until < now),
        )
        .order_by(ENROLLMENTS.c.next_due_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed_ids = [
        row[0]
        for row in conn.execute(
            ENROLLMENTS.update()
            .where(ENROLLMENTS.c.id.in_(due.scalar_subquery()))
            .values(claimed_until=now + lease)
            .returning(ENROLLMENTS.c.id)
        )
    ]
    if not claimed_ids:
        return []
    rows = conn.execute(
        sa.select(
            ENROLLMENTS.c.id,
            ENROLLMENTS.c.customer_id,
            ENROLLMENTS.c.campaign_id,
            ENROLLMENTS.c.next_step,
            ENROLLMENTS.c.next_step_key,
            ENROLLMENTS.c.enrolled_at,
            ENROLLMENTS.c.last_step_at,
            CUSTOMERS.c.email,
            CUSTOMERS.c.consent,
            CUSTOMERS.c.status,
            CUSTOMERS.c.timezone,
        )
        .join(CUSTOMERS, CUSTOMERS.c.id == ENROLLMENTS.c.customer_id)
        .where(ENROLLMENTS.c.id.in_(claimed_ids))
        .order_by(ENROLLMENTS.c.next_due_at)
    )
    return [Claimed(*row) for row in rows]


def release(conn: Connection, enrollment_id: int, *, next_due_at: datetime | None) -> None:
    """Give a claim back, optionally with a new due time (window closed, cap reached)."""
    values: dict[str, Any] = {"claimed_until": None}
    if next_due_at is not None:
        values["next_due_at"] = next_due_at
    conn.execute(ENROLLMENTS.update().where(ENROLLMENTS.c.id == enrollment_id).values(values))


@dataclass(frozen=True)
class Started:
    """The message row this send will go out under, or why it must not go out."""

    message_id: int | None
    token: str | None
    refused: str | None = None  # "already sent", "in flight elsewhere", "unknown"
    # This worker's lease on the row: only the worker holding it may send (mark_sending).
    lease_until: datetime | None = None


def put_back(conn: Connection, started: Sequence[Started], now: datetime) -> None:
    """Queued rows this worker will not send after all (it is stopping): due again at once
    for whoever claims them next, and their enrollments' claims given up. Nothing of them
    went out."""
    mine = [s.message_id for s in started if s.message_id is not None]
    if not mine:
        return
    rows = conn.execute(
        MESSAGES.update()
        .where(MESSAGES.c.id.in_(mine), MESSAGES.c.status == MessageStatus.QUEUED.value)
        .values(
            status=MessageStatus.RETRY.value,
            retry_at=now,
            lease_until=None,
            attempts=sa.case((MESSAGES.c.attempts > 0, MESSAGES.c.attempts - 1), else_=0),
        )
        .returning(MESSAGES.c.enrollment_id)
    ).all()
    if rows:
        conn.execute(
            ENROLLMENTS.update()
            .where(ENROLLMENTS.c.id.in_([r[0] for r in rows]))
            .values(claimed_until=None)
        )


def unmark_sending(conn: Connection, started: Sequence[Started], now: datetime) -> None:
    """Rows marked ``sending`` whose sends were cancelled before any byte went out: due
    again at once (as :func:`put_back`)."""
    mine = [s.message_id for s in started if s.message_id is not None]
    if mine:
        conn.execute(
            MESSAGES.update()
            .where(MESSAGES.c.id.in_(mine), MESSAGES.c.status == MessageStatus.SENDING.value)
            .values(status=MessageStatus.QUEUED.value)
        )
        put_back(conn, started, now)


def renew_claims(
    conn: Connection,
    queued: dict[datetime, list[int]],
    enrollment_ids: Sequence[int],
    until: datetime,
) -> set[int]:
    """A live worker keeps what it claimed: its ``queued`` rows (by the lease each holds)
    and its running enrollments are held until ``until``. Returns the rows renewed (a row
    taken over meanwhile is not: its send will be refused, as it must)."""
    renewed: set[int] = set()
    for held, ids in queued.items():
        rows = conn.execute(
            MESSAGES.update()
            .where(
                MESSAGES.c.id.in_(ids),
                MESSAGES.c.status == MessageStatus.QUEUED.value,
                MESSAGES.c.lease_until == held,
            )
            .values(lease_until=until)
            .returning(MESSAGES.c.id)
        )
        renewed.update(row[0] for row in rows)
    if enrollment_ids:
        conn.execute(
            ENROLLMENTS.update()
            .where(
                ENROLLMENTS.c.id.in_(list(enrollment_ids)),
                ENROLLMENTS.c.status == EnrollmentStatus.ACTIVE.value,
                ENROLLMENTS.c.claimed_until.is_not(None),
            )
            .values(claimed_until=until)
        )
    return renewed


def expire_leases(conn: Connection, now: datetime) -> int:
    """Rows whose worker died: a ``sending`` one (its bytes were going out) becomes
    ``unknown`` and its enrollment waits for a person; a ``queued`` one (nothing went out)
    is due again at once. Returns how many became unknown."""
    conn.execute(
        MESSAGES.update()
        .where(MESSAGES.c.status == MessageStatus.QUEUED.value, MESSAGES.c.lease_until < now)
        .values(
            status=MessageStatus.RETRY.value,
            retry_at=now,
            lease_until=None,
            # It was never tried: the next start counts the attempt.
            attempts=sa.case((MESSAGES.c.attempts > 0, MESSAGES.c.attempts - 1), else_=0),
        )
    )
    stale = conn.execute(
        sa.select(MESSAGES.c.id).where(
            MESSAGES.c.status == MessageStatus.SENDING.value, MESSAGES.c.lease_until < now
        )
    ).all()
    return settle_unknown(conn, [row[0] for row in stale])


# The reason `reengage sends list` shows for such a mail.
DIED_ON_THE_WIRE = (
    "the worker stopped while this mail was on the wire: whether the server took it is not known"
)


def settle_unknown(conn: Connection, message_ids: Sequence[int]) -> int:
    """``sending`` messages whose worker died become ``unknown``; their enrollments, if still
    going on, wait for a person (``reengage sends resolve``). One that ended meanwhile (a
    reply, a call that started the customer on another sequence) stays ended."""
    if not message_ids:
        return 0
    settled = conn.execute(
        MESSAGES.update()
        .where(
            MESSAGES.c.id.in_(list(message_ids)),
            MESSAGES.c.status == MessageStatus.SENDING.value,
        )
        .values(
            status=MessageStatus.UNKNOWN.value,
            lease_until=None,
            smtp_response=sa.func.coalesce(MESSAGES.c.smtp_response, DIED_ON_THE_WIRE),
        )
        .returning(MESSAGES.c.enrollment_id)
    ).all()
    hold(conn, [row[0] for row in settled], "send_unknown")
    return len(settled)
