"""The data model: reps, customers and their file, activities, and per-customer stats.

Declarative only (sqlmodel on SQLAlchemy 2); all queries live in ``reengage.store``.
Timestamps are aware UTC in Python and naive UTC in the database (portable to SQLite).
Schema changes go through an Alembic migration in ``reengage/store/migrations``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as naive UTC; returns them aware. Same on SQLite and PostgreSQL."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _utcnow() -> datetime:
    return datetime.now(UTC)


# Named constraints, so migrations can alter them on SQLite (batch mode) and PostgreSQL alike.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class CustomerStatus(StrEnum):
    """Whether reengage may contact a customer at all."""

    ACTIVE = "active"
    DO_NOT_CONTACT = "do_not_contact"


class ActivityKind(StrEnum):
    """What a customer did. Orders carry amount and margin; the rest show they are around."""

    ORDER = "order"
    VISIT = "visit"
    LOGIN = "login"
    SUPPORT_TICKET = "support_ticket"
    MEETING = "meeting"
    OTHER = "other"


class Rep(SQLModel, table=True):
    """A sales rep who owns customers and receives the morning call list."""

    __tablename__ = "reps"

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(max_length=200, unique=True)
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    phone: str | None = Field(default=None, max_length=50)
    timezone: str = Field(default="UTC", max_length=64)
    created_at: datetime = Field(default_factory=_utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=_utcnow, sa_type=UTCDateTime)


class Customer(SQLModel, table=True):
    """A customer and the file a good rep keeps on them (decision maker, interests, dates)."""

    __tablename__ = "customers"

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(max_length=200, unique=True)
    email: str = Field(max_length=320, index=True)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    company: str | None = Field(default=None, max_length=300)
    phone: str | None = Field(default=None, max_length=50)
    segment: str | None = Field(default=None, max_length=100, index=True)
    locale: str = Field(default="en", max_length=35)
    timezone: str | None = Field(default=None, max_length=64)
    # The rep's external id, not a foreign key: customers and reps may be imported in any order.
    rep_external_id: str | None = Field(default=None, max_length=200, index=True)
    consent: bool = Field(default=True)
    status: CustomerStatus = Field(default=CustomerStatus.ACTIVE, sa_type=sa.String(32))
    decision_maker: str | None = Field(default=None, max_length=200)
    decision_maker_role: str | None = Field(default=None, max_length=200)
    # [{"name", "role", "phone", "email"}]
    contacts: list[dict[str, str]] = Field(default_factory=list, sa_type=sa.JSON)
    interests: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    last_product: str | None = Field(default=None, max_length=300)
    # [{"label": "birthday", "date": "1975-04-12"}]; year 2000 means "every year, year unknown"
    important_dates: list[dict[str, str]] = Field(default_factory=list, sa_type=sa.JSON)
    tags: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    notes: str | None = Field(default=None, sa_type=sa.Text)
    # "Pause for 90 days" from a mail's footer: no campaign enrolls them before this.
    paused_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=_utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=_utcnow, sa_type=UTCDateTime)


class Activity(SQLModel, table=True):
    """One thing a customer did: an order, a visit, a ticket. Deduplicated on ``external_id``."""

    __tablename__ = "activities"
    __table_args__ = (sa.Index("ix_activities_customer_time", "customer_id", "occurred_at"),)

    id: int | None = Field(default=None, primary_key=True)
    # The source system's id, or a content hash when it has none (see ingest.activity_key).
    external_id: str = Field(max_length=200, unique=True)
    customer_id: int = Field(foreign_key="customers.id", ondelete="CASCADE")
    kind: str = Field(default=ActivityKind.ORDER.value, max_length=32)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    amount: float | None = None
    margin: float | None = None
    created_at: datetime = Field(default_factory=_utcnow, sa_type=UTCDateTime)


class CustomerStats(SQLModel, table=True):
    """Running stats per customer, updated on every ingest so detection never scans activities.

    Folded by ``reengage.history.Summary``: counts, sums, extremes and the last few orders,
    so late and out-of-order activities give the same stats as in-order ones. The derived
    columns (typical gap, decline ratios) are stored so campaign audiences can filter on
    them in SQL.
    """

    __tablename__ = "customer_stats"
    # Covers the detection pass: a range of last orders, read without touching the table.
    __table_args__ = (
        sa.Index(
            "ix_customer_stats_detect",
            "last_order_at",
            "typical_gap_days",
            "order_count",
            "segment",
            "first_order_at",
            "total_value",
            "gap_floor_days",
        ),
    )

    customer_id: int = Field(primary_key=True, foreign_key="customers.id", ondelete="CASCADE")
    # A copy of customers.segment (kept in step by the store) so detection needs no join.
    segment: str | None = Field(default=None, max_length=100)
    activity_count: int = 0
    order_count: int = 0
    first_activity_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_activity_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_order_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_order_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    total_value: float = 0.0
    total_margin: float = 0.0
    # [[epoch_seconds, amount, margin], ...] of the last few orders, oldest first
    recent_orders: list[list[float]] = Field(default_factory=list, sa_type=sa.JSON)
    typical_gap_days: float | None = None  # median gap between recent buying occasions
    # A floor under the expected gap whatever the segment's gap turns out to be, so the
    # detection query can rule most customers out in SQL (see detect.gap_floor).
    gap_floor_days: float | None = None
    count_ratio: float | None = None  # orders in the recent window / the window before
    aov_ratio: float | None = None  # average order value, recent / before
    margin_ratio: float | None = None  # margin contributed, recent / before
    updated_at: datetime = Field(default_factory=_utcnow, sa_type=UTCDateTime)


class LapseModelFit(SQLModel, table=True):
    """A lapse model fitted on this business's history (``reengage score --fit``); newest wins."""

    __tablename__ = "lapse_models"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=_utcnow, sa_type=UTCDateTime)
    fitted_as_of: datetime = Field(sa_type=UTCDateTime)
    horizon_days: float
    weights: list[float] = Field(sa_type=sa.JSON)
    customers: int
    auc: float | None = None  # in-sample ranking quality, beside plain recency's
    auc_recency: float | None = None


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
    UNKNOWN = "unknown"  # the process died mid-send: never re-sent blindly, reported
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
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class Suppression(SQLModel, table=True):
    """An address that must not be mailed (bounced, complained, unsubscribed)."""

    __tablename__ = "suppressions"

    email: str = Field(primary_key=True, max_length=320)
    reason: str = Field(max_length=32)
    detail: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_type=UTCDateTime)


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


class JobLock(SQLModel, table=True):
    """A leased lock so a job runs once per tick across every worker sharing the database."""

    __tablename__ = "job_locks"

    name: str = Field(primary_key=True, max_length=63)
    holder: str = Field(max_length=200)
    locked_until: datetime = Field(sa_type=UTCDateTime)


class ResponseKind(StrEnum):
    """What a customer (or their mail server) did after a mail."""

    OPEN = "open"
    CLICK = "click"
    UNSUBSCRIBE = "unsubscribe"
    PAUSE = "pause"
    BOUNCE = "bounce"  # permanent: the address is suppressed
    SOFT_BOUNCE = "soft_bounce"  # temporary (mailbox full, delayed)
    COMPLAINT = "complaint"  # marked as spam (ARF feedback loop or a provider's webhook)
    REPLY = "reply"
    AUTO_REPLY = "auto_reply"  # out of office and friends: recorded, changes nothing
    DELIVERED = "delivered"  # a provider confirmed delivery
    CONVERSION = "conversion"  # an activity after enrollment, attributed to the campaign


class Response(SQLModel, table=True):
    """One thing that happened after a send: the raw material of funnels and lift."""

    __tablename__ = "responses"
    __table_args__ = (
        sa.Index("ix_responses_message", "message_id", "kind"),
        sa.Index("ix_responses_campaign", "campaign_id", "kind", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    message_id: int | None = Field(default=None, foreign_key="messages.id", ondelete="SET NULL")
    enrollment_id: int | None = Field(
        default=None, foreign_key="enrollments.id", ondelete="SET NULL", index=True
    )
    customer_id: int | None = Field(
        default=None, foreign_key="customers.id", ondelete="CASCADE", index=True
    )
    campaign_id: str | None = Field(default=None, max_length=63)
    step_key: str | None = Field(default=None, max_length=63)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    source: str = Field(max_length=16)  # web, mail, webhook, import
    detail: str | None = Field(default=None, max_length=500)  # URL, diagnostic, feedback type
    value: float | None = None  # a conversion's order value
    # A provider's event id or an activity's key: a repeat of the same event is ignored.
    dedupe_key: str | None = Field(default=None, max_length=200, unique=True)


class Reply(SQLModel, table=True):
    """A person's answer to a mail, kept for their rep with the quoted history stripped."""

    __tablename__ = "replies"

    id: int | None = Field(default=None, primary_key=True)
    message_id: int | None = Field(default=None, foreign_key="messages.id", ondelete="SET NULL")
    customer_id: int | None = Field(
        default=None, foreign_key="customers.id", ondelete="CASCADE", index=True
    )
    campaign_id: str | None = Field(default=None, max_length=63)
    sender: str = Field(max_length=320)
    subject: str = Field(max_length=300)
    text: str = Field(sa_type=sa.Text)
    automatic: bool = False  # an out-of-office: shown, never acted on
    status: str = Field(default="new", max_length=16)  # new → seen by the rep
    received_at: datetime = Field(sa_type=UTCDateTime)


class InboundUnmatched(SQLModel, table=True):
    """A bounce, complaint, unsubscribe or reply that names no message of ours (or names
    one but another address): kept for the operator to review, never acted on."""

    __tablename__ = "inbound_unmatched"

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = Field(sa_type=UTCDateTime, index=True)
    source: str = Field(max_length=16)  # mail, webhook
    kind: str = Field(max_length=16)  # bounce, soft_bounce, complaint, unsubscribe, reply
    reason: str = Field(max_length=32)  # no_message, other_address, bad_signature
    message_id: int | None = Field(default=None, foreign_key="messages.id", ondelete="SET NULL")
    sender: str = Field(default="", max_length=320)
    subject: str = Field(default="", max_length=300)
    addresses: str = Field(default="", max_length=500)  # the addresses it named, cut short
    detail: str | None = Field(default=None, max_length=500)
    # A provider's event id: a webhook retried is kept once, like a response.
    dedupe_key: str | None = Field(default=None, max_length=200, unique=True)


TABLES = (
    Rep,
    Customer,
    Activity,
    CustomerStats,
    LapseModelFit,
    Enrollment,
    Message,
    Suppression,
    CallTask,
    JobLock,
    Response,
    Reply,
    CallOutcome,
    Digest,
    InboundUnmatched,
)
