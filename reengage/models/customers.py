"""Customers and what reengage knows of them: reps, customers' files, activities, running
stats, and the lapse model fitted on them."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from reengage.models.base import UTCDateTime


def _utcnow() -> datetime:
    return datetime.now(UTC)


# What reports call the customers without a segment; no customer's segment may be spelt so.
NO_SEGMENT = "(no segment)"


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
    # The language of the rep's digest, call form and its confirmation (see reengage.i18n).
    locale: str = Field(default="en", max_length=35)
    created_at: datetime = Field(default_factory=_utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=_utcnow, sa_type=UTCDateTime)


class Customer(SQLModel, table=True):
    """A customer and the file a good rep keeps on them (decision maker, interests, dates)."""

    __tablename__ = "customers"
    # A rep's list finds the rep's callable customers (and who of them is paused) in this
    # index alone, without visiting their rows (reengage.store.rep_calls).
    __table_args__ = (
        sa.Index("ix_customers_rep_callable", "rep_external_id", "status", "paused_until", "id"),
    )

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
    # [{"label": "birthday", "date": "1975-04-12"}]; year 2000
    # (timeutil.UNKNOWN_YEAR) means "every year, year unknown"
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
        # The detection pass reads only who is due (see ``look_again_at``).
        sa.Index("ix_customer_stats_look_again_at", "look_again_at"),
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
    # When the detection pass must next look at this customer: the earliest moment they
    # could enter a campaign as their record stands (NULL: at the next pass). Anything
    # that changes what detection reads about them sets it back to NULL and bumps
    # ``look_version``; the pass writes its answer only over the version it read.
    look_again_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    look_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class DetectionState(SQLModel, table=True):
    """What the last whole detection pass was computed with (one row): while the enabled
    campaigns' audiences, the lapse model and the population prior stay the same, a pass
    needs to look only at the customers who are due."""

    __tablename__ = "detection_state"

    id: int = Field(default=1, primary_key=True)
    fingerprint: str = Field(max_length=64)
    # The population's typical gaps the looks were computed with: (segment or "", days).
    population: list[list[Any]] = Field(sa_type=sa.JSON)
    population_at: datetime = Field(sa_type=UTCDateTime)
    # The lapse score's horizon chosen from the customers' rhythm with that population, kept
    # until it is refitted: {days, source, median_gap_days, regular_buyers}. None: not kept.
    horizon: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    updated_at: datetime = Field(default_factory=_utcnow, sa_type=UTCDateTime)


class DetectionPass(SQLModel, table=True):
    """A detection pass that several workers share: each takes the next chunk of customers
    (``detection_chunks``) until none is left; the pass is finished, and ``detection_state``
    written, once every chunk is done (``reengage.store.passes``)."""

    __tablename__ = "detection_passes"
    # At most one pass runs at a time: ``running`` is TRUE while it does, NULL after.
    __table_args__ = (sa.Index("ux_detection_passes_running", "running", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    running: bool | None = Field(default=True)
    started_at: datetime = Field(sa_type=UTCDateTime)  # the moment every chunk decides at
    whole: bool
    fingerprint: str = Field(max_length=64)
    population: list[list[Any]] = Field(sa_type=sa.JSON)
    population_at: datetime = Field(sa_type=UTCDateTime)
    horizon: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)  # as in the state
    cursor_id: int = 0  # the last customer id handed out in a chunk
    exhausted: bool = False  # no customer is left after the cursor
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DetectionChunk(SQLModel, table=True):
    """A chunk of a shared detection pass, ``after_id < customer_id <= last_id``, leased by the
    worker deciding it; a dead worker's chunk is taken again once its lease runs out."""

    __tablename__ = "detection_chunks"

    pass_id: int = Field(primary_key=True, foreign_key="detection_passes.id", ondelete="CASCADE")
    after_id: int = Field(primary_key=True)
    last_id: int
    holder: str = Field(max_length=200)
    locked_until: datetime = Field(sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


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
    # Why this horizon (reengage.horizon): rhythm, default or operator, and the rhythm read.
    horizon_source: str | None = Field(default=None, max_length=16)
    median_gap_days: float | None = None
    regular_buyers: int | None = None
    # How it ranked on history it never saw (a refit's held-out window), when that is known.
    held_out_from: datetime | None = Field(default=None, sa_type=UTCDateTime)
    held_out_auc: float | None = None
    held_out_precision: float | None = None  # of the top 10%


class LapseRefit(SQLModel, table=True):
    """One refit of the lapse model by the daemon and its verdict: kept, rejected, skipped."""

    __tablename__ = "lapse_refits"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    verdict: str = Field(max_length=16)
    horizon_days: float
    held_out_from: datetime | None = Field(default=None, sa_type=UTCDateTime)
    candidate_auc: float | None = None
    in_force_auc: float | None = None
    candidate_precision: float | None = None
    in_force_precision: float | None = None
    reason: str = Field(default="", sa_type=sa.Text)
    model_id: int | None = Field(
        default=None, foreign_key="lapse_models.id", ondelete="SET NULL"
    )  # the model it kept
