"""The counts behind funnels and lift: their shapes (a campaign's, a group's, a step's) and
the grouped queries that fill them, one per kind of record (enrollments, mails, responses,
conversions, calls). Each groups in the database and returns a few rows per campaign and
step, whatever the size of the tables; ``stats`` runs them together in one transaction.

Everything is scoped by enrollment: ``since`` keeps the customers who entered a campaign on
or after that moment, and their mails, responses and conversions, so a funnel and its lift
describe the same people.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction

from reengage.models import EnrollmentStatus, MessageStatus, ResponseKind
from reengage.store.sqlfuncs import epoch_days
from reengage.store.tables import CALLS as CALL_TASKS
from reengage.store.tables import ENROLLMENTS, MESSAGES, RESPONSES
from reengage.store.uplift import first_returns
from reengage.timeutil import as_utc

EPOCH = date(1970, 1, 1)
# Responses counted once per message in a funnel (a second click on the same mail is
# still one mail clicked).
FUNNEL_KINDS = (
    ResponseKind.OPEN.value,
    ResponseKind.CLICK.value,
    ResponseKind.REPLY.value,
    ResponseKind.UNSUBSCRIBE.value,
    ResponseKind.COMPLAINT.value,
)


@dataclass
class StepCounts:
    """One step's mails and what came of them (counts of mails, except ``reactivated``)."""

    first_seen: datetime | None = None  # orders the steps as customers met them
    sent: int = 0  # handed to the mail server with a final answer: delivered or bounced
    delivered: int = 0  # accepted and not bounced since
    bounced: int = 0
    responses: dict[str, int] = field(default_factory=dict)  # kind → mails with one
    calls: int = 0  # a call step: customers put on a rep's list
    reactivated: int = 0  # treated enrollments with a conversion credited to this step
    revenue: float = 0.0


@dataclass
class ArmCounts:
    """One group of a campaign (treatment or holdout)."""

    enrolled: int = 0
    converted: int = 0  # enrollments with any conversion credited (attribution window)
    revenue: float = 0.0
    # within the lift horizon of enrolling, the same for both groups:
    reactivated: int = 0
    enrolled_by_day: dict[date, int] = field(default_factory=dict)
    reactivated_by_day: dict[date, int] = field(default_factory=dict)  # by first conversion


@dataclass
class CampaignCounts:
    """A campaign's raw counts; ``reengage.stats`` turns them into results."""

    campaign_id: str
    treatment: ArmCounts = field(default_factory=ArmCounts)
    holdout: ArmCounts = field(default_factory=ArmCounts)
    steps: dict[str | None, StepCounts] = field(default_factory=dict)
    # treated enrollments whose customer entered another campaign (not held out) within
    # the lift horizon of entering this one: their returns count for both
    also_entered: int = 0

    def step(self, key: str | None) -> StepCounts:
        """The step's counts, created on first use."""
        return self.steps.setdefault(key, StepCounts())


def _scope(query: sa.Select[Any], campaign: str | None, since: datetime | None) -> Any:
    if campaign is not None:
        query = query.where(ENROLLMENTS.c.campaign_id == campaign)
    if since is not None:
        query = query.where(ENROLLMENTS.c.enrolled_at >= since)
    return query


class utc_day(GenericFunction[int]):  # SQL function names are lower case
    """The UTC day of a stored timestamp as whole days since 1970-01-01, in the database.

    Not ``CAST(epoch_days(x) AS INTEGER)``: PostgreSQL's cast rounds where SQLite's truncates,
    so an afternoon would land on the next day there.
    """

    type = sa.Integer()
    inherit_cache = True


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: utc_day, compiler: Any, **kw: Any) -> str:
    # julianday is positive for any date we store, so the cast truncates to the day.
    return f"CAST(julianday({compiler.process(element.clauses, **kw)}) - 2440587.5 AS INTEGER)"


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: Any, **kw: Any) -> str:
    # Stored timestamps are naive UTC: their date is the UTC date.
    return f"(CAST({compiler.process(element.clauses, **kw)} AS DATE) - DATE '1970-01-01')"


def _day(column: Any) -> sa.ColumnElement[int]:
    return utc_day(column)


def _date(days: int | None) -> date:
    return EPOCH + timedelta(days=int(days or 0))


def count_enrollments(
    conn: Connection,
    campaign: str | None,
    since: datetime | None,
    arm: Callable[[str, str], ArmCounts],
) -> None:
    """Enrollments per group, and per day they entered."""
    # Grouped by status, not by a CASE over it: PostgreSQL does not match a CASE in GROUP BY
    # with its twin in SELECT when each carries its own bound parameters.
    status = ENROLLMENTS.c.status
    enrolled_day = _day(ENROLLMENTS.c.enrolled_at)
    query = sa.select(ENROLLMENTS.c.campaign_id, status, enrolled_day, sa.func.count()).group_by(
        ENROLLMENTS.c.campaign_id, status, enrolled_day
    )
    for campaign_id, state, day, count in conn.execute(_scope(query, campaign, since)):
        group = arm(campaign_id, state)
        # Several statuses of one group share a day: add up.
        group.enrolled += count
        group.enrolled_by_day[_date(day)] = group.enrolled_by_day.get(_date(day), 0) + count


def count_messages(
    conn: Connection,
    campaign: str | None,
    since: datetime | None,
    of: Callable[[str], CampaignCounts],
) -> None:
    """Mails per step: handed over with a final answer (sent), delivered, bounced; and
    when the step was first met."""
    query = (
        sa.select(
            MESSAGES.c.campaign_id,
            MESSAGES.c.step_key,
            MESSAGES.c.status,
            sa.func.count(),
            sa.func.min(MESSAGES.c.created_at),
        )
        .join(ENROLLMENTS, ENROLLMENTS.c.id == MESSAGES.c.enrollment_id)
        .group_by(MESSAGES.c.campaign_id, MESSAGES.c.step_key, MESSAGES.c.status)
    )
    for campaign_id, step_key, status, count, first in conn.execute(_scope(query, campaign, since)):
        step = of(campaign_id).step(step_key)
        step.first_seen = _earliest(step.first_seen, first)
        if status == MessageStatus.SENT.value:
            step.sent += count
            step.delivered += count
        elif status == MessageStatus.BOUNCED.value:
            step.sent += count
            step.bounced += count


def count_responses(
    conn: Connection,
    campaign: str | None,
    since: datetime | None,
    of: Callable[[str], CampaignCounts],
) -> None:
    """Mails per step with each kind of response (a mail clicked twice is one mail)."""
    query = (
        sa.select(
            RESPONSES.c.campaign_id,
            RESPONSES.c.step_key,
            RESPONSES.c.kind,
            sa.func.count(sa.distinct(RESPONSES.c.message_id)),
        )
        .join(ENROLLMENTS, ENROLLMENTS.c.id == RESPONSES.c.enrollment_id)
        .where(RESPONSES.c.kind.in_(FUNNEL_KINDS), RESPONSES.c.message_id.is_not(None))
        .group_by(RESPONSES.c.campaign_id, RESPONSES.c.step_key, RESPONSES.c.kind)
    )
    for campaign_id, step_key, kind, count in conn.execute(_scope(query, campaign, since)):
        of(campaign_id).step(step_key).responses[kind] = count


def count_conversions(
    conn: Connection,
    campaign: str | None,
    since: datetime | None,
    horizon: timedelta,
    of: Callable[[str], CampaignCounts],
    arm: Callable[[str, str], ArmCounts],
) -> None:
    """Conversions: per group, per step they were credited to, and (for lift) each
    enrollment's first return within the horizon, by its day."""
    conversion = RESPONSES.c.kind == ResponseKind.CONVERSION.value
    status = ENROLLMENTS.c.status
    # Per group: enrollments with any credited conversion, and what they spent.
    query = (
        sa.select(
            ENROLLMENTS.c.campaign_id,
            status,
            sa.func.count(sa.distinct(RESPONSES.c.enrollment_id)),
            sa.func.coalesce(sa.func.sum(RESPONSES.c.value), 0.0),
        )
        .join(ENROLLMENTS, ENROLLMENTS.c.id == RESPONSES.c.enrollment_id)
        .where(conversion)
        .group_by(ENROLLMENTS.c.campaign_id, status)
    )
    for campaign_id, state, count, revenue in conn.execute(_scope(query, campaign, since)):
        group = arm(campaign_id, state)  # an enrollment has one status: no double count
        group.converted += count
        group.revenue += float(revenue)

    # Per step of the treated group: the step a conversion was credited to.
    query = (
        sa.select(
            ENROLLMENTS.c.campaign_id,
            RESPONSES.c.step_key,
            sa.func.count(sa.distinct(RESPONSES.c.enrollment_id)),
            sa.func.coalesce(sa.func.sum(RESPONSES.c.value), 0.0),
        )
        .join(ENROLLMENTS, ENROLLMENTS.c.id == RESPONSES.c.enrollment_id)
        .where(conversion, ENROLLMENTS.c.status != EnrollmentStatus.HOLDOUT.value)
        .group_by(ENROLLMENTS.c.campaign_id, RESPONSES.c.step_key)
    )
    for campaign_id, step_key, count, revenue in conn.execute(_scope(query, campaign, since)):
        step = of(campaign_id).step(step_key)
        step.reactivated, step.revenue = count, float(revenue)

    # For lift: each enrollment's first return within the horizon of enrolling, whichever
    # campaign its purchase was credited to, by the day it came (the timeline's raw material).
    scoped = [campaign] if campaign is not None else None
    first = first_returns(horizon, campaigns=scoped, since=since)
    day = _day(first.c.first_at)
    query = (
        sa.select(ENROLLMENTS.c.campaign_id, status, day, sa.func.count())
        .join(first, first.c.enrollment_id == ENROLLMENTS.c.id)
        .group_by(ENROLLMENTS.c.campaign_id, status, day)
    )
    for campaign_id, state, first_day, count in conn.execute(_scope(query, campaign, since)):
        group = arm(campaign_id, state)
        group.reactivated += count
        by_day = group.reactivated_by_day
        by_day[_date(first_day)] = by_day.get(_date(first_day), 0) + count


def count_also_entered(
    conn: Connection,
    campaign: str | None,
    since: datetime | None,
    horizon: timedelta,
    of: Callable[[str], CampaignCounts],
) -> None:
    """How many of each campaign's treated entered another campaign, treated, within the
    horizon of entering it: the lift then measures the campaigns together."""
    other = ENROLLMENTS.alias("other")
    holdout = EnrollmentStatus.HOLDOUT.value
    after = epoch_days(other.c.enrolled_at) - epoch_days(ENROLLMENTS.c.enrolled_at)
    followed = (
        sa.select(other.c.id)
        .where(
            other.c.customer_id == ENROLLMENTS.c.customer_id,
            other.c.campaign_id != ENROLLMENTS.c.campaign_id,
            other.c.status != holdout,
            other.c.enrolled_at >= ENROLLMENTS.c.enrolled_at,
            after <= horizon.total_seconds() / 86400.0,
        )
        .exists()
    )
    query = (
        sa.select(ENROLLMENTS.c.campaign_id, sa.func.count())
        .where(ENROLLMENTS.c.status != holdout, followed)
        .group_by(ENROLLMENTS.c.campaign_id)
    )
    for campaign_id, count in conn.execute(_scope(query, campaign, since)):
        of(campaign_id).also_entered = count


def count_call_tasks(
    conn: Connection,
    campaign: str | None,
    since: datetime | None,
    of: Callable[[str], CampaignCounts],
) -> None:
    """Call steps: customers put on a rep's list per step, and when first."""
    query = (
        sa.select(
            ENROLLMENTS.c.campaign_id,
            CALL_TASKS.c.step_key,
            sa.func.count(),
            sa.func.min(CALL_TASKS.c.created_at),
        )
        .join(ENROLLMENTS, ENROLLMENTS.c.id == CALL_TASKS.c.enrollment_id)
        .group_by(ENROLLMENTS.c.campaign_id, CALL_TASKS.c.step_key)
    )
    for campaign_id, step_key, count, first in conn.execute(_scope(query, campaign, since)):
        step = of(campaign_id).step(step_key)
        step.calls = count
        step.first_seen = _earliest(step.first_seen, first)


def _earliest(known: datetime | None, value: Any) -> datetime | None:
    # An aggregate bypasses the column type: SQLite hands back text, PostgreSQL naive values.
    if value is None:
        return known
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    value = as_utc(value)
    return value if known is None or value < known else known
