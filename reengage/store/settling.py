"""Held messages settled by a person: failed or unknown mails, listed, then recorded as
sent or skipped (the enrollment moves on) or sent once more (``reengage sends``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.models import EnrollmentStatus, MessageStatus
from reengage.store.enrollments import COMPLETE, MOVABLE, NEXT_STEP
from reengage.store.tables import CUSTOMERS, ENROLLMENTS, MESSAGES


@dataclass(frozen=True)
class HeldMessage:
    """A message a person must look at: it failed, or its outcome is unknown."""

    message_id: int
    status: str
    customer: str  # external id
    email: str  # the address it went to (the customer's now, for rows from before 0007)
    campaign_id: str
    step_key: str
    created_at: datetime
    reason: str | None


def held_messages(
    conn: Connection, statuses: Sequence[str], campaign_id: str | None, limit: int
) -> list[HeldMessage]:
    """Messages in ``statuses`` (``failed``, ``unknown``), newest first."""
    query = (
        sa.select(
            MESSAGES.c.id,
            MESSAGES.c.status,
            CUSTOMERS.c.external_id,
            sa.func.coalesce(MESSAGES.c.recipient, CUSTOMERS.c.email),
            MESSAGES.c.campaign_id,
            MESSAGES.c.step_key,
            MESSAGES.c.created_at,
            MESSAGES.c.smtp_response,
        )
        .join(CUSTOMERS, CUSTOMERS.c.id == MESSAGES.c.customer_id)
        .where(MESSAGES.c.status.in_(list(statuses)))
        .order_by(MESSAGES.c.created_at.desc(), MESSAGES.c.id.desc())
        .limit(limit)
    )
    if campaign_id is not None:
        query = query.where(MESSAGES.c.campaign_id == campaign_id)
    return [HeldMessage(*row) for row in conn.execute(query)]


@dataclass(frozen=True)
class Held:
    """A failed or unknown message, with what settling it needs."""

    message_id: int
    enrollment_id: int
    campaign_id: str
    step_key: str
    created_at: datetime


def held(
    conn: Connection,
    statuses: Sequence[str],
    message_ids: Sequence[int] | None,
    campaign_id: str | None,
) -> list[Held]:
    """Messages in ``statuses`` (all, or these ids, or this campaign's), oldest first."""
    query = (
        sa.select(
            MESSAGES.c.id,
            MESSAGES.c.enrollment_id,
            MESSAGES.c.campaign_id,
            MESSAGES.c.step_key,
            MESSAGES.c.created_at,
        )
        .where(MESSAGES.c.status.in_(list(statuses)))
        .order_by(MESSAGES.c.id)
    )
    if message_ids is not None:
        query = query.where(MESSAGES.c.id.in_(list(message_ids)))
    if campaign_id is not None:
        query = query.where(MESSAGES.c.campaign_id == campaign_id)
    return [Held(*row) for row in conn.execute(query)]


def settle(
    conn: Connection,
    message: Held,
    status: MessageStatus,
    *,
    note: str,
    now: datetime,
    next_step: tuple[int, str, datetime] | None,
) -> None:
    """A person decided what became of a held message: it was ``sent`` (the customer got
    it) or is ``skipped`` (never to be sent); either way its enrollment moves on to
    ``next_step`` (or completes). Only a message still failed or unknown is settled."""
    result = conn.execute(
        MESSAGES.update()
        .where(
            MESSAGES.c.id == message.message_id,
            MESSAGES.c.status.in_([MessageStatus.UNKNOWN.value, MessageStatus.FAILED.value]),
        )
        .values(
            status=status.value,
            smtp_response=note[:500],
            sent_at=message.created_at if status is MessageStatus.SENT else None,
            lease_until=None,
            retry_at=None,
        )
    )
    if not result.rowcount:
        return
    if next_step is None:
        conn.execute(COMPLETE, {"b_id": message.enrollment_id, "b_now": now})
    else:
        index, key, due = next_step
        conn.execute(
            NEXT_STEP,
            {
                "b_id": message.enrollment_id,
                "b_now": now,
                "b_step": index,
                "b_key": key,
                "b_due": due,
            },
        )


def resend(conn: Connection, messages: Sequence[Held], now: datetime) -> tuple[int, int]:
    """Send held messages again at the next pass, each under its own row (at most once
    more): for a failed one after its template was fixed, for an unknown one when a person
    has checked that it did not arrive. One whose sequence ended meanwhile (the customer
    paused, replied, unsubscribed) is not sent: it is ``skipped``, saying why. Returns how
    many will be sent, and how many were skipped."""
    if not messages:
        return 0, 0
    going = {
        row[0]
        for row in conn.execute(
            ENROLLMENTS.update()
            .where(
                ENROLLMENTS.c.id.in_(sorted({m.enrollment_id for m in messages})),
                MOVABLE,
            )
            .values(
                status=EnrollmentStatus.ACTIVE.value,
                exit_reason=None,
                next_due_at=now,
                claimed_until=None,
            )
            .returning(ENROLLMENTS.c.id)
        )
    }
    held = [MessageStatus.UNKNOWN.value, MessageStatus.FAILED.value]
    again = [m.message_id for m in messages if m.enrollment_id in going]
    ended = [m.message_id for m in messages if m.enrollment_id not in going]
    for ids, values in (
        (again, {"status": MessageStatus.RETRY.value, "retry_at": now}),
        (
            ended,
            {
                "status": MessageStatus.SKIPPED.value,
                "retry_at": None,
                "smtp_response": "not sent again: its sequence had ended",
            },
        ),
    ):
        if ids:
            conn.execute(
                MESSAGES.update()
                .where(MESSAGES.c.id.in_(ids), MESSAGES.c.status.in_(held))
                .values(lease_until=None, **values)
            )
    return len(again), len(ended)
