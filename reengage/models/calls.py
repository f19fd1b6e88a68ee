"""Calls: the reps' call lists, what a rep learned on a call, and the morning digests."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from reengage.models.base import UTCDateTime


class CallTaskStatus(StrEnum):
    """A call on the list: waiting, done (an outcome was recorded) or cancelled."""

    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"  # do not contact, or the customer is gone


class CallTask(SQLModel, table=True):
    """A call on a rep's list: from a campaign's call step, or "call again on D" after a call."""

    __tablename__ = "call_tasks"
    __table_args__ = (
        sa.UniqueConstraint("enrollment_id", "step_key"),
        sa.Index("ix_call_tasks_status_due", "status", "due_at"),
        # A rep's list reads its customers' open calls (migration 0007).
        sa.Index("ix_call_tasks_customer_status", "customer_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    enrollment_id: int | None = Field(
        default=None, foreign_key="enrollments.id", ondelete="SET NULL"
    )
    customer_id: int = Field(foreign_key="customers.id", ondelete="CASCADE", index=True)
    campaign_id: str | None = Field(default=None, max_length=63)
    step_key: str | None = Field(default=None, max_length=63)
    reason: str = Field(max_length=300)
    priority: str = Field(default="normal", max_length=8)
    due_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default=CallTaskStatus.OPEN.value, max_length=16)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Reached(StrEnum):
    """Whom the rep spoke to."""

    DECISION_MAKER = "decision_maker"
    SOMEONE_ELSE = "someone_else"
    NOBODY = "nobody"  # no answer, voicemail: the call is logged, nothing was learned


class StopReason(StrEnum):
    """Why a customer stopped buying, as the rep heard it."""

    PRICE = "price"
    SERVICE = "service"
    QUALITY = "quality"
    DELIVERY = "delivery"
    COMPETITOR = "competitor"
    NO_LONGER_NEEDED = "no_longer_needed"
    HABIT = "habit"  # just forgot, got busy: the habit lapsed
    INTERNAL_CHANGE = "internal_change"  # new buyer, reorganisation, budget freeze
    OTHER = "other"


class CauseScope(StrEnum):
    """Whether the cause is this customer's alone, or something the business must fix."""

    SPECIFIC = "specific"
    SYSTEMIC = "systemic"
    UNSURE = "unsure"


class WorthIt(StrEnum):
    """Whether the customer is worth winning back, in the rep's judgement."""

    YES = "yes"
    NO = "no"
    LATER = "later"


class NextStep(StrEnum):
    """What happens after the call."""

    FOLLOW_UP = "follow_up"  # send the "here is what we changed" campaign
    CALL_AGAIN = "call_again"  # on a date: they come back on that day's digest
    REP_OFFER = "rep_offer"  # the rep makes a win-back offer themself
    DO_NOT_CONTACT = "do_not_contact"  # stop everything, for good
    NOTHING = "nothing"


class CallOutcome(SQLModel, table=True):
    """What a rep learned on a call; the raw material of ``reengage report causes``."""

    __tablename__ = "call_outcomes"
    # Each customer's latest call, for a rep's list (migration 0007).
    __table_args__ = (sa.Index("ix_call_outcomes_customer_called", "customer_id", "called_at"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", ondelete="CASCADE", index=True)
    rep_external_id: str | None = Field(default=None, max_length=200)
    called_at: datetime = Field(sa_type=UTCDateTime, index=True)
    reached: str = Field(max_length=16)
    contact_name: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=32)
    reason_text: str | None = Field(default=None, sa_type=sa.Text)
    scope: str | None = Field(default=None, max_length=16)
    win_back: str | None = Field(default=None, sa_type=sa.Text)  # what would win them back
    worth: str = Field(max_length=8)
    next_step: str = Field(max_length=16)
    call_again_on: date | None = Field(default=None, sa_type=sa.Date)
    value_at_risk: float | None = None  # a year's value at stake, as it stood at the call
    source: str = Field(max_length=16)  # web (the digest's link) or cli
    # One outcome per digest link: submitting the form twice records it once.
    dedupe_key: str | None = Field(default=None, max_length=200, unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime)


class CallOutcomeChange(SQLModel, table=True):
    """One field of a call outcome corrected by a rep: who, when, old -> new (migration 0015)."""

    __tablename__ = "call_outcome_changes"

    id: int | None = Field(default=None, primary_key=True)
    outcome_id: int = Field(foreign_key="call_outcomes.id", ondelete="CASCADE", index=True)
    changed_at: datetime = Field(sa_type=UTCDateTime)
    changed_by: str | None = Field(default=None, max_length=200)  # the rep's external id
    field: str = Field(max_length=32)
    old_value: str | None = Field(default=None, sa_type=sa.Text)
    new_value: str | None = Field(default=None, sa_type=sa.Text)


class DigestStatus(StrEnum):
    """A rep's morning mail for one day, written before it is sent (like a message)."""

    SENDING = "sending"
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"  # the rep's address was refused
    EMPTY = "empty"  # nobody to call that day: nothing sent
    UNKNOWN = "unknown"  # the process died mid-send: never re-sent blindly


class Digest(SQLModel, table=True):
    """One rep's call list for one (local) day; the unique key sends it once."""

    __tablename__ = "digests"
    __table_args__ = (sa.UniqueConstraint("rep_external_id", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    rep_external_id: str = Field(max_length=200)
    day: date = Field(sa_type=sa.Date)  # the rep's local date
    status: str = Field(default=DigestStatus.SENDING.value, max_length=16)
    token: str = Field(max_length=64, unique=True)
    customer_ids: list[int] = Field(default_factory=list, sa_type=sa.JSON)  # in list order
    more: int = 0  # worth a call but past the list's length
    attempts: int = 0
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    retry_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    smtp_response: str | None = Field(default=None, max_length=500)
    message_id: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
