"""Enrollments in SQL: who enters a campaign, how an enrollment moves on, and how it ends.

An enrollment is ``active`` while its steps go on, ``attention`` while a send of it waits
for a person to settle, then ``completed`` or ``exited`` (with its reason). Ending one is
:func:`end_enrollments`, written once for every caller (a bounce, a reply, a pause, an
unsubscribe, a rep's call); moving one on is :func:`advance` (or its statements, run as
executemany by a batch of sends).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.models import (
    CustomerStatus,
    EnrollmentStatus,
)
from reengage.store.engine import upsert_insert
from reengage.store.looks import Chunk, in_chunk, key_in
from reengage.store.tables import CUSTOMERS, ENROLLMENTS, MESSAGES, STATS, SUPPRESSIONS


@dataclass(frozen=True)
class NewEnrollment:
    """A customer entering a campaign (or its holdout)."""

    customer_id: int
    campaign_id: str
    holdout: bool
    first_step_key: str
    first_due_at: datetime
    judged_activity_at: datetime | None = None  # their last activity as the decision saw it


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


def insert_enrollments(conn: Connection, rows: Iterable[NewEnrollment], now: datetime) -> int:
    """Record new enrollments; holdout members are recorded too (for measuring lift). One
    that would make a second running enrollment of a customer in a campaign is skipped."""
    values = [
        {
            "customer_id": r.customer_id,
            "campaign_id": r.campaign_id,
            "status": (EnrollmentStatus.HOLDOUT if r.holdout else EnrollmentStatus.ACTIVE).value,
            "next_step": 0,
            "next_step_key": None if r.holdout else r.first_step_key,
            "next_due_at": None if r.holdout else r.first_due_at,
            "enrolled_at": now,
            "judged_activity_at": r.judged_activity_at,
            "ended_at": now if r.holdout else None,
        }
        for r in rows
    ]
    if values:
        # A customer already running in the campaign (another pass got there first) is
        # skipped: the unique index on running enrollments decides, not a lock.
        insert = upsert_insert(conn.dialect.name, ENROLLMENTS).on_conflict_do_nothing()
        conn.execute(insert, values)
    return len(values)


def exit_on_activity(
    conn: Connection, campaign_ids: list[str], now: datetime, chunk: Chunk | None = None
) -> int:
    """End running enrollments whose customer did something after enrolling, or whose
    last activity is later than the one the enrolling decision saw (an order imported late,
    dated before the enrollment: they were not gone after all). Of the chunk's customers
    only, when given: a detection pass checks each chunk it decides."""
    if not campaign_ids:
        return 0
    stats = sa.table("customer_stats", sa.column("customer_id"), sa.column("last_activity_at"))
    acted: sa.ColumnElement[bool] = sa.exists().where(
        stats.c.customer_id == ENROLLMENTS.c.customer_id,
        sa.or_(
            stats.c.last_activity_at > ENROLLMENTS.c.enrolled_at,
            stats.c.last_activity_at > ENROLLMENTS.c.judged_activity_at,
        ),
    )
    if chunk is not None:
        acted = sa.and_(key_in(chunk, ENROLLMENTS.c.customer_id), acted)
    return end_enrollments(conn, "reactivated", now, campaign_ids=campaign_ids, where=acted)


# Running enrollments: going on, or waiting for a person to settle a send (``attention``).
RUNNING = (EnrollmentStatus.ACTIVE.value, EnrollmentStatus.ATTENTION.value)


def end_enrollments(
    conn: Connection,
    reason: str,
    now: datetime,
    *,
    enrollment_id: int | None = None,
    customer_id: int | None = None,
    campaign_ids: Sequence[str] | None = None,
    where: sa.ColumnElement[bool] | None = None,
) -> int:
    """End running enrollments early with ``reason``: this one, or a customer's, or those
    ``where`` holds (of these campaigns, or all). A held one (``attention``) ends too and
    never resumes once its send is settled; one already ended keeps how it ended. Returns
    how many ended."""
    if enrollment_id is None and customer_id is None and where is None:
        raise ValueError("end_enrollments needs an enrollment, a customer or a condition")
    query = ENROLLMENTS.update().where(ENROLLMENTS.c.status.in_(RUNNING))
    if where is not None:
        query = query.where(where)
    if enrollment_id is not None:
        query = query.where(ENROLLMENTS.c.id == enrollment_id)
    if customer_id is not None:
        query = query.where(ENROLLMENTS.c.customer_id == customer_id)
    if campaign_ids is not None:
        query = query.where(ENROLLMENTS.c.campaign_id.in_(list(campaign_ids)))
    result = conn.execute(
        query.values(
            status=EnrollmentStatus.EXITED.value,
            exit_reason=reason,
            ended_at=now,
            next_due_at=None,
            claimed_until=None,
        )
    )
    return result.rowcount or 0


def hold(conn: Connection, enrollment_ids: int | Sequence[int], reason: str) -> None:
    """The enrollment (or these) waits for a person to settle one of its sends
    (``attention``, with ``reason``), unless it ended meanwhile (a reply, a call): then it
    stays ended."""
    ids = [enrollment_ids] if isinstance(enrollment_ids, int) else sorted(set(enrollment_ids))
    if not ids:
        return
    conn.execute(
        ENROLLMENTS.update()
        .where(ENROLLMENTS.c.id.in_(ids), MOVABLE)
        .values(status=EnrollmentStatus.ATTENTION.value, exit_reason=reason, claimed_until=None)
    )


def due_again(conn: Connection, enrollment_id: int, when: datetime) -> None:
    """The enrollment's mail is due again at ``when`` (a retry, or a send that never went
    out), unless the enrollment ended meanwhile: then it stays ended."""
    conn.execute(
        ENROLLMENTS.update()
        .where(ENROLLMENTS.c.id == enrollment_id, MOVABLE)
        .values(
            status=EnrollmentStatus.ACTIVE.value,
            exit_reason=None,
            next_due_at=when,
            claimed_until=None,
        )
    )


# An enrollment moves on from a send only while it is running or held for that send: one
# whose lease ran out mid-send (``attention``) goes on when the server's 250 arrives after
# all, and one that ended meanwhile (an unsubscribe) stays ended.
# (Two comparisons, not IN: these statements run as executemany, which IN cannot.)
MOVABLE = sa.or_(
    ENROLLMENTS.c.status == EnrollmentStatus.ACTIVE.value,
    ENROLLMENTS.c.status == EnrollmentStatus.ATTENTION.value,
)

COMPLETE = (
    ENROLLMENTS.update()
    .where(ENROLLMENTS.c.id == sa.bindparam("b_id"), MOVABLE)
    .values(
        status=EnrollmentStatus.COMPLETED.value,
        ended_at=sa.bindparam("b_now"),
        next_due_at=None,
        next_step_key=None,
        exit_reason="completed",
        claimed_until=None,
        last_step_at=sa.bindparam("b_now"),
    )
)

NEXT_STEP = (
    ENROLLMENTS.update()
    .where(ENROLLMENTS.c.id == sa.bindparam("b_id"), MOVABLE)
    .values(
        status=EnrollmentStatus.ACTIVE.value,
        exit_reason=None,
        next_step=sa.bindparam("b_step"),
        next_step_key=sa.bindparam("b_key"),
        next_due_at=sa.bindparam("b_due"),
        claimed_until=None,
        last_step_at=sa.bindparam("b_now"),
    )
)


def advance(
    conn: Connection,
    enrollment_id: int,
    *,
    now: datetime,
    next_step: tuple[int, str, datetime] | None,
) -> None:
    """Move an enrollment on: the next step and when, or completed."""
    if next_step is None:
        conn.execute(COMPLETE, {"b_id": enrollment_id, "b_now": now})
    else:
        index, key, due = next_step
        conn.execute(
            NEXT_STEP,
            {
                "b_id": enrollment_id,
                "b_now": now,
                "b_step": index,
                "b_key": key,
                "b_due": due,
            },
        )


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
