"""Correcting a call outcome: a rep who mis-tapped may change what they saved for a while.

An outcome stays editable for :data:`EDIT_WINDOW` after it was saved. Every changed field
is logged (who, when, old → new) with the outcome; a change of whom they reached, the next
step or the call-again day undoes what the old answer did (a do-not-contact mark, stopped
sequences, a follow-up, a call) and does what the new one says, in one transaction.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from reengage.digest.outcomes import (
    CallContext,
    CallReport,
    OutcomeError,
    check,
    outcome_values,
    plan_acts,
)
from reengage.models import CallOutcome
from reengage.store import Store
from reengage.store.corrections import ACTING_FIELDS, Change

EDIT_WINDOW = timedelta(hours=24)


def editable_until(outcome: CallOutcome) -> datetime:
    """The moment after which this outcome can no longer be corrected."""
    return outcome.created_at + EDIT_WINDOW


def can_correct(outcome: CallOutcome, now: datetime) -> bool:
    """Whether the outcome may still be corrected at ``now``."""
    return now < editable_until(outcome)


def correct_outcome(
    store: Store,
    ctx: CallContext,
    outcome_id: int,
    report: CallReport,
    now: datetime,
    *,
    today: date,
) -> list[Change]:
    """Replace a saved outcome with ``report``; the changes logged (empty: nothing differed).
    Raises :class:`OutcomeError` (field ``form``) once the edit window has passed."""
    saved = store.calls.outcome_by_id(outcome_id)
    if saved is None or not can_correct(saved, now):
        raise OutcomeError(
            {
                "form": f"this call can only be corrected within {_hours(EDIT_WINDOW)} hours "
                "of saving it; record a new call with: reengage calls log CUSTOMER"
            }
        )
    check(ctx, report, today)
    values = outcome_values(report)
    acting = any(values[name] != getattr(saved, name) for name in ACTING_FIELDS)
    redo = plan_acts(store, ctx, report, now) if acting else None
    return store.calls.correct_outcome(outcome_id, values, redo, ctx.rep_external_id, now)


def _hours(window: timedelta) -> int:
    return int(window.total_seconds() // 3600)
