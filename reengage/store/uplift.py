"""The counts behind uplift per segment: who came back, treated and held out, by group.

Only enrollments that have had the whole window count (entered at least ``horizon`` before
``now``): someone who entered yesterday has not had the chance to come back yet, and the
two groups age alike only when both are counted over the same window. Came back means an
activity of the customer within ``horizon`` of entering, as the campaign's lift counts it
(:mod:`reengage.store.campaign_counts`), whichever campaign the purchase was credited to. One
grouped query: a few rows per campaign, segment and rhythm class, whatever the size of the
tables (1.0 s on PostgreSQL for 300,000 enrollments and 1.5 million activities).

``store.uplift_rules`` (:class:`UpliftRules`) keeps what each campaign's ``min_uplift`` left
out when last measured (``uplift_rules``). Measuring is that grouped query over every
enrollment (seconds on millions), so the detection pass measures at most once an hour and
keeps the answer (:func:`reengage.uplift.with_min_uplift`). Several workers may find a rule
stale at once: each writes only over the rule it saw, so the first one's answer stands and
every worker reads that one back — their passes filter with the same list, and share one
fingerprint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.models import EnrollmentStatus
from reengage.store.engine import upsert_insert
from reengage.store.sqlfuncs import epoch_days
from reengage.store.tables import ACTIVITIES, CUSTOMERS, ENROLLMENTS, STATS, UPLIFT_RULES

# A customer's rhythm class, from their typical gap between orders as it stands now (the
# store keeps no history of it): (at most this many days, name). Wide classes on purpose:
# a customer rarely moves from one to the next, so "now" describes them at entry too.
RHYTHMS: tuple[tuple[float, str], ...] = (
    (10.0, "weekly"),
    (45.0, "monthly"),
    (120.0, "quarterly"),
)
SLOWER = "slower"
NO_RHYTHM = "one order"  # no typical gap yet: a single order (or none)


@dataclass(frozen=True)
class UpliftCount:
    """Enrollments of one campaign, group (held out or not), segment and rhythm class that
    have had the whole window, and how many of them came back within it."""

    campaign_id: str
    held_out: bool
    segment: str | None
    rhythm: str
    entered: int
    came_back: int


def first_returns(
    horizon: timedelta,
    *,
    campaigns: list[str] | None = None,
    since: datetime | None = None,
    upto: datetime | None = None,
) -> sa.Subquery:
    """Each enrollment's first activity of its customer after entering and within
    ``horizon`` of it (``enrollment_id``, ``first_at``): whether and when it came back, for
    the lift and the uplift alike. Enrollments of ``campaigns`` (None: all), entered from
    ``since`` and at most at ``upto``, as the query that joins it counts them.

    Read from the activities, not from the conversions: a conversion is credited to one
    enrollment only (the latest entered), so a customer who entered another campaign
    after this one would lose this one's return, and its treated group would look as if
    nobody came back. Every campaign a customer entered sees the return in its window.
    """
    entered = ENROLLMENTS.alias("entered")
    waited = epoch_days(ACTIVITIES.c.occurred_at) - epoch_days(entered.c.enrolled_at)
    query = (
        sa.select(
            entered.c.id.label("enrollment_id"),
            sa.func.min(ACTIVITIES.c.occurred_at).label("first_at"),
        )
        .select_from(
            entered.join(
                ACTIVITIES,
                sa.and_(
                    ACTIVITIES.c.customer_id == entered.c.customer_id,
                    ACTIVITIES.c.occurred_at > entered.c.enrolled_at,
                ),
            )
        )
        .where(waited <= horizon.total_seconds() / 86400.0)
        .group_by(entered.c.id)
    )
    if campaigns is not None:
        query = query.where(entered.c.campaign_id.in_(campaigns))
    if since is not None:
        query = query.where(entered.c.enrolled_at >= since)
    if upto is not None:
        query = query.where(entered.c.enrolled_at <= upto)
    return query.subquery()


def uplift_counts(
    conn: Connection,
    *,
    campaigns: list[str] | None,
    since: datetime | None,
    horizon: timedelta,
    now: datetime,
) -> list[UpliftCount]:
    """Counts per campaign, group, segment and rhythm class (``campaigns`` None: all) of
    enrollments from ``since`` that entered at least ``horizon`` before ``now``."""
    first = first_returns(horizon, campaigns=campaigns, since=since, upto=now - horizon)
    came_back = sa.case((first.c.first_at.is_not(None), 1), else_=0)
    gap = STATS.c.typical_gap_days
    rhythm = sa.case(
        (gap.is_(None), NO_RHYTHM),
        *((gap <= limit, name) for limit, name in RHYTHMS),
        else_=SLOWER,
    )
    inner = (
        sa.select(
            ENROLLMENTS.c.campaign_id.label("campaign_id"),
            (ENROLLMENTS.c.status == EnrollmentStatus.HOLDOUT.value).label("held_out"),
            CUSTOMERS.c.segment.label("segment"),
            rhythm.label("rhythm"),
            came_back.label("came_back"),
        )
        .select_from(
            ENROLLMENTS.join(CUSTOMERS, CUSTOMERS.c.id == ENROLLMENTS.c.customer_id)
            .outerjoin(STATS, STATS.c.customer_id == ENROLLMENTS.c.customer_id)
            .outerjoin(first, first.c.enrollment_id == ENROLLMENTS.c.id)
        )
        .where(ENROLLMENTS.c.enrolled_at <= now - horizon)
    )
    if campaigns is not None:
        inner = inner.where(ENROLLMENTS.c.campaign_id.in_(campaigns))
    if since is not None:
        inner = inner.where(ENROLLMENTS.c.enrolled_at >= since)
    # Grouped outside, on the derived table's columns: PostgreSQL does not match a CASE
    # carrying bound parameters in GROUP BY with its twin in SELECT.
    rows = inner.subquery()
    keys = (rows.c.campaign_id, rows.c.held_out, rows.c.segment, rows.c.rhythm)
    query = sa.select(*keys, sa.func.count(), sa.func.sum(rows.c.came_back)).group_by(*keys)
    return [
        UpliftCount(campaign_id, bool(held), segment, rhythm_name, int(n), int(back or 0))
        for campaign_id, held, segment, rhythm_name, n, back in conn.execute(query)
    ]


@dataclass(frozen=True)
class KeptRule:
    """What a campaign's ``min_uplift`` left out when measured at ``measured_at``:
    ``(segment or None, its uplift)`` of each segment below the bar."""

    campaign_id: str
    min_uplift: float
    measured_at: datetime
    segments: tuple[tuple[str | None, float], ...]


class UpliftRules:
    """Read and keep the measured ``min_uplift`` rules; one transaction a call."""

    def __init__(self, tx: Callable[[], AbstractContextManager[Connection]], dialect: str) -> None:
        self._tx = tx
        self._dialect = dialect

    def read(self, campaign_ids: Sequence[str]) -> dict[str, KeptRule]:
        """The kept rules of these campaigns (none for a campaign never measured)."""
        query = sa.select(UPLIFT_RULES).where(UPLIFT_RULES.c.campaign_id.in_(list(campaign_ids)))
        with self._tx() as conn:
            return {
                row.campaign_id: KeptRule(
                    row.campaign_id,
                    row.min_uplift,
                    row.measured_at,
                    tuple((segment, float(uplift)) for segment, uplift in row.segments),
                )
                for row in conn.execute(query)
            }

    def keep(self, rules: Sequence[KeptRule], seen: dict[str, datetime | None]) -> None:
        """Write each rule over the one measured at ``seen[campaign]`` (None: there was
        none); a rule another worker wrote meanwhile stays as it is."""
        with self._tx() as conn:
            for rule in rules:
                values = {
                    "min_uplift": rule.min_uplift,
                    "measured_at": rule.measured_at,
                    "segments": [list(pair) for pair in rule.segments],
                }
                before = seen.get(rule.campaign_id)
                if before is None:
                    insert = upsert_insert(self._dialect, UPLIFT_RULES).values(
                        campaign_id=rule.campaign_id, **values
                    )
                    conn.execute(insert.on_conflict_do_nothing(index_elements=["campaign_id"]))
                else:
                    conn.execute(
                        UPLIFT_RULES.update()
                        .where(
                            UPLIFT_RULES.c.campaign_id == rule.campaign_id,
                            UPLIFT_RULES.c.measured_at == before,
                        )
                        .values(**values)
                    )
