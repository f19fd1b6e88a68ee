"""Enrollments read, never written: the history detection decides on (a list of customers,
or a detection chunk's), the running ones ``reengage simulate`` carries on, the queue's
depth, who waits at each step (what a campaign file change must keep), and a customer's
enrollments and mails for a person reading their file. The writes — entering, moving on,
ending — are ``enrollments``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.models import CustomerStatus, EnrollmentStatus
from reengage.store.enrollments import RUNNING
from reengage.store.looks import Chunk, in_chunk
from reengage.store.tables import CUSTOMERS, ENROLLMENTS, MESSAGES, STATS, SUPPRESSIONS


def enrollment_history(
    conn: Connection, customer_ids: Sequence[int], since: datetime
) -> list[tuple[int, str, str, datetime]]:
    """``(customer, campaign, status, enrolled_at)`` of active enrollments and recent ones."""
    rows: list[tuple[int, str, str, datetime]] = []
    for start in range(0, len(customer_ids), 10_000):
        chunk = list(customer_ids[start : start + 10_000])
        query = sa.select(
            ENROLLMENTS.c.customer_id,
            ENROLLMENTS.c.campaign_id,
            ENROLLMENTS.c.status,
            ENROLLMENTS.c.enrolled_at,
        ).where(
            ENROLLMENTS.c.customer_id.in_(chunk),
            sa.or_(
                ENROLLMENTS.c.status.in_(
                    [EnrollmentStatus.ACTIVE.value, EnrollmentStatus.ATTENTION.value]
                ),
                ENROLLMENTS.c.enrolled_at >= since,
            ),
        )
        rows.extend((r[0], r[1], r[2], r[3]) for r in conn.execute(query))
    return rows


def history_in_chunk(
    conn: Connection, chunk: Chunk, since: datetime
) -> list[tuple[int, str, str, datetime]]:
    """:func:`enrollment_history` of a detection chunk's customers, selected as a set (see
    :class:`reengage.store.looks.Chunk`) through ``ix_enrollments_customer``."""
    query = (
        sa.select(
            ENROLLMENTS.c.customer_id,
            ENROLLMENTS.c.campaign_id,
            ENROLLMENTS.c.status,
            ENROLLMENTS.c.enrolled_at,
        )
        .join(STATS, STATS.c.customer_id == ENROLLMENTS.c.customer_id)
        .where(
            in_chunk(chunk, ENROLLMENTS.c.customer_id),
            sa.or_(ENROLLMENTS.c.status.in_(RUNNING), ENROLLMENTS.c.enrolled_at >= since),
        )
    )
    return [(r[0], r[1], r[2], r[3]) for r in conn.execute(query)]


@dataclass(frozen=True)
class Running:
    """An enrollment still under way (``active``, or ``attention`` waiting for a person),
    with what ``reengage simulate`` needs to carry it on: its next step and its customer."""

    enrollment_id: int
    customer_id: int
    campaign_id: str
    status: str
    next_step_key: str | None
    next_due_at: datetime | None
    enrolled_at: datetime
    external_id: str
    timezone: str | None
    locale: str | None
    reachable: bool  # consent, an active customer, an address not suppressed


def running_enrollments(conn: Connection) -> list[Running]:
    """Every ``active`` or ``attention`` enrollment, oldest due first. Read only."""
    suppressed = (
        sa.exists()
        .where(SUPPRESSIONS.c.email == sa.func.lower(CUSTOMERS.c.email))
        .label("suppressed")
    )
    query = (
        sa.select(
            ENROLLMENTS.c.id,
            ENROLLMENTS.c.customer_id,
            ENROLLMENTS.c.campaign_id,
            ENROLLMENTS.c.status,
            ENROLLMENTS.c.next_step_key,
            ENROLLMENTS.c.next_due_at,
            ENROLLMENTS.c.enrolled_at,
            CUSTOMERS.c.external_id,
            CUSTOMERS.c.timezone,
            CUSTOMERS.c.locale,
            CUSTOMERS.c.consent,
            CUSTOMERS.c.status.label("customer_status"),
            suppressed,
        )
        .join(CUSTOMERS, CUSTOMERS.c.id == ENROLLMENTS.c.customer_id)
        .where(
            ENROLLMENTS.c.status.in_(
                [EnrollmentStatus.ACTIVE.value, EnrollmentStatus.ATTENTION.value]
            )
        )
        .order_by(ENROLLMENTS.c.next_due_at, ENROLLMENTS.c.id)
    )
    return [
        Running(
            row.id,
            row.customer_id,
            row.campaign_id,
            row.status,
            row.next_step_key,
            row.next_due_at,
            row.enrolled_at,
            row.external_id,
            row.timezone,
            row.locale,
            bool(row.consent)
            and row.customer_status == CustomerStatus.ACTIVE.value
            and not row.suppressed,
        )
        for row in conn.execute(query)
    ]


def queue_depth(conn: Connection, now: datetime) -> int:
    """Enrollments with a step due now."""
    return int(
        conn.scalar(
            sa.select(sa.func.count())
            .select_from(ENROLLMENTS)
            .where(
                ENROLLMENTS.c.status == EnrollmentStatus.ACTIVE.value,
                ENROLLMENTS.c.next_due_at <= now,
            )
        )
        or 0
    )


def waiting_at_steps(conn: Connection) -> dict[tuple[str, str], int]:
    """How many running enrollments wait at each (campaign, step key): what a campaign file
    change must keep, since a key that is gone ends them (``reengage validate``, ``doctor``)."""
    query = (
        sa.select(ENROLLMENTS.c.campaign_id, ENROLLMENTS.c.next_step_key, sa.func.count())
        .where(ENROLLMENTS.c.status.in_(RUNNING), ENROLLMENTS.c.next_step_key.is_not(None))
        .group_by(ENROLLMENTS.c.campaign_id, ENROLLMENTS.c.next_step_key)
    )
    return {(row[0], row[1]): int(row[2]) for row in conn.execute(query)}


@dataclass(frozen=True)
class EnrollmentLine:
    """One of a customer's enrollments, for a person reading their file."""

    campaign_id: str
    status: str
    enrolled_at: datetime
    next_step_key: str | None
    next_due_at: datetime | None
    exit_reason: str | None


@dataclass(frozen=True)
class MessageLine:
    """One of a customer's mails, for a person reading their file."""

    message_id: int
    campaign_id: str
    step_key: str
    status: str
    created_at: datetime
    sent_at: datetime | None
    detail: str | None


def customer_sending(
    conn: Connection, customer_id: int, limit: int = 50
) -> tuple[list[EnrollmentLine], list[MessageLine]]:
    """A customer's enrollments and mails, newest first."""
    enrollments = conn.execute(
        sa.select(
            ENROLLMENTS.c.campaign_id,
            ENROLLMENTS.c.status,
            ENROLLMENTS.c.enrolled_at,
            ENROLLMENTS.c.next_step_key,
            ENROLLMENTS.c.next_due_at,
            ENROLLMENTS.c.exit_reason,
        )
        .where(ENROLLMENTS.c.customer_id == customer_id)
        .order_by(ENROLLMENTS.c.enrolled_at.desc(), ENROLLMENTS.c.id.desc())
        .limit(limit)
    ).all()
    messages = conn.execute(
        sa.select(
            MESSAGES.c.id,
            MESSAGES.c.campaign_id,
            MESSAGES.c.step_key,
            MESSAGES.c.status,
            MESSAGES.c.created_at,
            MESSAGES.c.sent_at,
            MESSAGES.c.smtp_response,
        )
        .where(MESSAGES.c.customer_id == customer_id)
        .order_by(MESSAGES.c.created_at.desc(), MESSAGES.c.id.desc())
        .limit(limit)
    ).all()
    return [EnrollmentLine(*row) for row in enrollments], [MessageLine(*row) for row in messages]
