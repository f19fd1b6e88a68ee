"""Sending: enrollments in campaigns, their messages, the suppression list, and the leased
lock that runs each pass once across workers."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from reengage.models.base import UTCDateTime


class EnrollmentStatus(StrEnum):
    """Where a customer stands in a campaign."""

    ACTIVE = "active"  # steps still to come
    HOLDOUT = "holdout"  # in the control group: recorded, never contacted
    COMPLETED = "completed"  # every step done
    EXITED = "exited"  # ended early: see exit_reason
    ATTENTION = "attention"  # a send's outcome is unknown: a person must look (doctor)


RUNNING = "status IN ('active', 'attention')"  # an enrollment still under way


class Enrollment(SQLModel, table=True):
    """A customer in a campaign, and which step is next and when."""

    __tablename__ = "enrollments"
    __table_args__ = (
        sa.Index("ix_enrollments_due", "status", "next_due_at"),
        sa.Index("ix_enrollments_customer", "customer_id", "campaign_id"),
        # Detection looks again at customers whose enrollment just ended.
        sa.Index("ix_enrollments_ended_at", "ended_at"),
        # At most one running enrollment per customer and campaign, whatever two detection
        # passes (or two workers) decide at once: the database refuses the second.
        sa.Index(
            "ux_enrollments_running",
            "customer_id",
            "campaign_id",
            unique=True,
            sqlite_where=sa.text(RUNNING),
            postgresql_where=sa.text(RUNNING),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", ondelete="CASCADE")
    campaign_id: str = Field(max_length=63)
    status: str = Field(default=EnrollmentStatus.ACTIVE.value, max_length=16)
    next_step: int = 0  # index into the campaign's steps
    next_step_key: str | None = Field(default=None, max_length=63)
    next_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    enrolled_at: datetime = Field(sa_type=UTCDateTime)
    # The customer's last activity as the enrolling decision saw it: an activity imported
    # later but dated after it (a late order) ends the enrollment as one after enrolling does.
    judged_activity_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_step_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    exit_reason: str | None = Field(default=None, max_length=32)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class MessageStatus(StrEnum):
    """A message's life: queued → sending → sent, or retry, bounced, skipped, unknown, failed."""

    QUEUED = "queued"  # row written before SMTP; nothing has gone out yet (lease: until when)
    SENDING = "sending"  # its bytes are going to the server now; the lease says until when
    SENT = "sent"
    RETRY = "retry"  # a temporary failure; tried again at retry_at
    BOUNCED = "bounced"  # permanent failure: the address is suppressed
    SKIPPED = "skipped"  # not sent on purpose (suppressed, no consent, condition not met)
    UNKNOWN = "unknown"  # lost after it went out, or its process died: never re-sent blindly
    FAILED = "failed"  # could not be made for this customer (a template failed): never sent


class Message(SQLModel, table=True):
    """One step's mail to one enrollment; the unique key makes a second send impossible."""

    __tablename__ = "messages"
    __table_args__ = (
        sa.UniqueConstraint("enrollment_id", "step_key"),
        sa.Index("ix_messages_status_lease", "status", "lease_until"),
    )

    id: int | None = Field(default=None, primary_key=True)
    enrollment_id: int = Field(foreign_key="enrollments.id", ondelete="CASCADE")
    customer_id: int = Field(foreign_key="customers.id", ondelete="CASCADE", index=True)
    campaign_id: str = Field(max_length=63)
    step_key: str = Field(max_length=63)
    token: str = Field(max_length=64, unique=True)  # opaque id used in links and Return-Path
    status: str = Field(default=MessageStatus.SENDING.value, max_length=16)
    attempts: int = 0
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    retry_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    smtp_response: str | None = Field(default=None, max_length=500)
    message_id: str | None = Field(default=None, max_length=200)
    # The address this mail went to (RCPT TO), in its one spelling (``addresses.normalize``),
    # written with the row before SMTP: bounces, complaints, unsubscribes and replies about
    # the mail act on it, not on whatever address the customer has since. NULL for a step
    # never sent (skipped) and for rows from before migration 0007, which fall back to the
    # customer's current address.
    recipient: str | None = Field(default=None, max_length=320)
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class Suppression(SQLModel, table=True):
    """An address that must not be mailed (bounced, complained, unsubscribed)."""

    __tablename__ = "suppressions"

    email: str = Field(primary_key=True, max_length=320)
    reason: str = Field(max_length=32)
    detail: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_type=UTCDateTime)


class JobLock(SQLModel, table=True):
    """A leased lock so a job runs once per tick across every worker sharing the database."""

    __tablename__ = "job_locks"

    name: str = Field(primary_key=True, max_length=63)
    holder: str = Field(max_length=200)
    locked_until: datetime = Field(sa_type=UTCDateTime)


class UpliftRule(SQLModel, table=True):
    """The segments a campaign's ``min_uplift`` leaves out, as measured at ``measured_at``
    (``reengage.uplift.with_min_uplift``): measured at most once an hour and kept here, so
    every worker's detection pass filters with the same list."""

    __tablename__ = "uplift_rules"

    campaign_id: str = Field(primary_key=True, max_length=63)
    min_uplift: float  # the bar it was measured against: another bar is measured again
    measured_at: datetime = Field(sa_type=UTCDateTime)
    # [segment or None, its uplift] of each segment left out.
    segments: list[list[Any]] = Field(sa_type=sa.JSON)
