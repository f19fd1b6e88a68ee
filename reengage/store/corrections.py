"""Correcting a recorded call outcome in SQL: the new values, the log of each change, and
the old outcome's effects undone before the new one's are carried out, in one transaction.

What a correction may change and when is decided by :mod:`reengage.digest.corrections`;
here it is done. Effects are found by the moment they were made (``acted_at``: the
outcome's ``created_at``, or the last correction that redid its effects), since a call
outcome does not keep ids of what it touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.models import (
    CallOutcome,
    CallTaskStatus,
    CustomerStatus,
    EnrollmentStatus,
    NextStep,
)
from reengage.store.enrollments import end_enrollments
from reengage.store.outcomes import OutcomeActs, carry_out
from reengage.store.tables import CALLS, CUSTOMERS, ENROLLMENTS, OUTCOME_CHANGES, OUTCOMES

# A correction of one of these redoes the outcome's effects (enrollments, calls, status).
ACTING_FIELDS = ("reached", "next_step", "call_again_on")
# The exit reasons a call outcome ends enrollments with (undone when it is corrected).
_OUTCOME_EXITS = ("do_not_contact", "call_outcome")


@dataclass(frozen=True)
class Change:
    """One corrected field of a call outcome, as the log keeps it."""

    outcome_id: int
    changed_at: datetime
    changed_by: str | None
    field: str
    old_value: str | None
    new_value: str | None


def outcome_by_id(conn: Connection, outcome_id: int) -> CallOutcome | None:
    """The call outcome with this id."""
    row = conn.execute(sa.select(OUTCOMES).where(OUTCOMES.c.id == outcome_id)).first()
    return None if row is None else CallOutcome.model_validate(dict(row._mapping))


def changes(conn: Connection, outcome_id: int) -> list[Change]:
    """Every correction of this outcome, oldest first."""
    query = (
        sa.select(
            OUTCOME_CHANGES.c.outcome_id,
            OUTCOME_CHANGES.c.changed_at,
            OUTCOME_CHANGES.c.changed_by,
            OUTCOME_CHANGES.c.field,
            OUTCOME_CHANGES.c.old_value,
            OUTCOME_CHANGES.c.new_value,
        )
        .where(OUTCOME_CHANGES.c.outcome_id == outcome_id)
        .order_by(OUTCOME_CHANGES.c.id)
    )
    return [Change(*row) for row in conn.execute(query)]


def correct_outcome(
    conn: Connection,
    outcome_id: int,
    values: dict[str, Any],
    redo: OutcomeActs | None,
    who: str | None,
    now: datetime,
) -> list[Change]:
    """Set ``values`` on the outcome, log each field that changed, and when ``redo`` is given
    undo the old effects and carry out ``redo`` instead. Returns the changes logged."""
    # The row is locked (PostgreSQL) so two corrections of one outcome do not interleave.
    locked = sa.select(OUTCOMES).where(OUTCOMES.c.id == outcome_id).with_for_update()
    row = conn.execute(locked).first()
    if row is None:
        return []
    old = CallOutcome.model_validate(dict(row._mapping))
    acted_at = _acted_at(conn, old)
    made = [
        Change(outcome_id, now, who, name, _text(getattr(old, name)), _text(value))
        for name, value in values.items()
        if _text(getattr(old, name)) != _text(value)
    ]
    if not made:
        return []
    conn.execute(
        OUTCOME_CHANGES.insert(),
        [
            {
                "outcome_id": c.outcome_id,
                "changed_at": c.changed_at,
                "changed_by": c.changed_by,
                "field": c.field,
                "old_value": c.old_value,
                "new_value": c.new_value,
            }
            for c in made
        ],
    )
    conn.execute(OUTCOMES.update().where(OUTCOMES.c.id == outcome_id).values(**values))
    if redo is not None:
        undo_effects(conn, old, acted_at, now)
        carry_out(conn, redo, now)
    return made


def undo_effects(conn: Connection, old: CallOutcome, acted_at: datetime, now: datetime) -> None:
    """Take back what ``old`` did at ``acted_at``: a do-not-contact mark, the sequences it
    stopped (they resume at their next step now), the follow-up it started, the call it set."""
    customer_id = old.customer_id
    if old.next_step == NextStep.DO_NOT_CONTACT.value:
        conn.execute(
            CUSTOMERS.update()
            .where(
                CUSTOMERS.c.id == customer_id,
                CUSTOMERS.c.status == CustomerStatus.DO_NOT_CONTACT.value,
            )
            .values(status=CustomerStatus.ACTIVE.value, updated_at=now)
        )
    # The follow-up it started ends first, so a sequence it stopped in the same campaign
    # may run again.
    end_enrollments(
        conn,
        "call_corrected",
        now,
        customer_id=customer_id,
        where=ENROLLMENTS.c.enrolled_at == acted_at,
    )
    stopped = conn.execute(
        sa.select(ENROLLMENTS.c.id, ENROLLMENTS.c.campaign_id).where(
            ENROLLMENTS.c.customer_id == customer_id,
            ENROLLMENTS.c.status == EnrollmentStatus.EXITED.value,
            ENROLLMENTS.c.exit_reason.in_(_OUTCOME_EXITS),
            ENROLLMENTS.c.ended_at == acted_at,
            ENROLLMENTS.c.next_step_key.is_not(None),
        )
    ).all()
    for enrollment_id, campaign_id in stopped:
        running = conn.execute(
            sa.select(ENROLLMENTS.c.id).where(
                ENROLLMENTS.c.customer_id == customer_id,
                ENROLLMENTS.c.campaign_id == campaign_id,
                ENROLLMENTS.c.status == EnrollmentStatus.ACTIVE.value,
            )
        ).first()
        if running is None:  # never two running enrollments of one customer in a campaign
            conn.execute(
                ENROLLMENTS.update()
                .where(ENROLLMENTS.c.id == enrollment_id)
                .values(
                    status=EnrollmentStatus.ACTIVE.value,
                    exit_reason=None,
                    ended_at=None,
                    next_due_at=now,
                )
            )
    conn.execute(
        CALLS.update()
        .where(
            CALLS.c.customer_id == customer_id,
            CALLS.c.enrollment_id.is_(None),
            CALLS.c.created_at == acted_at,
            CALLS.c.status == CallTaskStatus.OPEN.value,
        )
        .values(status=CallTaskStatus.CANCELLED.value)
    )


def _acted_at(conn: Connection, outcome: CallOutcome) -> datetime:
    """When the outcome's effects were last made: its saving, or the last correction of a
    field that redid them."""
    last: datetime | None = conn.scalar(
        sa.select(OUTCOME_CHANGES.c.changed_at)
        .where(
            OUTCOME_CHANGES.c.outcome_id == outcome.id,
            OUTCOME_CHANGES.c.field.in_(ACTING_FIELDS),
        )
        .order_by(OUTCOME_CHANGES.c.id.desc())
        .limit(1)
    )
    return outcome.created_at if last is None else last


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
