"""Enrollments written in SQL: who enters a campaign, how an enrollment moves on, and how
it ends (what is read of them is ``enrollment_reads``).

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

from reengage.models import EnrollmentStatus
from reengage.store.engine import upsert_insert
from reengage.store.looks import Chunk, key_in
from reengage.store.tables import ENROLLMENTS


@dataclass(frozen=True)
class NewEnrollment:
    """A customer entering a campaign (or its holdout)."""

    customer_id: int
    campaign_id: str
    holdout: bool
    first_step_key: str
    first_due_at: datetime
    judged_activity_at: datetime | None = None  # their last activity as the decision saw it


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
