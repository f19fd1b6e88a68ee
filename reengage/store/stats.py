"""``store.stats``: the reads behind results, each call one transaction — the campaigns
anyone entered, every count behind funnels and lift at once (``snapshot``: the grouped
queries of ``campaign_counts`` in one transaction, so the numbers agree with each other),
who came back per segment (``uplift``) and the sender's complaint rate.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.models import EnrollmentStatus, ResponseKind
from reengage.store.campaign_counts import (
    ArmCounts,
    CampaignCounts,
    count_also_entered,
    count_call_tasks,
    count_conversions,
    count_enrollments,
    count_messages,
    count_responses,
)
from reengage.store.tables import ENROLLMENTS, MESSAGES, RESPONSES
from reengage.store.uplift import UpliftCount, uplift_counts


@dataclass(frozen=True)
class Snapshot:
    """Every count the results need, read in one transaction."""

    campaigns: dict[str, CampaignCounts]


def campaign_ids(conn: Connection) -> list[str]:
    """Every campaign anyone was ever enrolled in, sorted."""
    query = sa.select(ENROLLMENTS.c.campaign_id).distinct().order_by(ENROLLMENTS.c.campaign_id)
    return list(conn.scalars(query))


def snapshot(
    conn: Connection, *, campaign: str | None, since: datetime | None, horizon: timedelta
) -> Snapshot:
    """Counts per campaign, group and step for enrollments from ``since`` (all if None).

    ``horizon``: a conversion counts towards lift when it came within this long of
    enrolling, in both groups alike (see ``reengage.stats`` for why).
    """
    found: dict[str, CampaignCounts] = {}

    def of(campaign_id: str) -> CampaignCounts:
        return found.setdefault(campaign_id, CampaignCounts(campaign_id))

    def arm(campaign_id: str, status: str) -> ArmCounts:
        counts = of(campaign_id)
        return counts.holdout if status == EnrollmentStatus.HOLDOUT.value else counts.treatment

    count_enrollments(conn, campaign, since, arm)
    count_messages(conn, campaign, since, of)
    count_responses(conn, campaign, since, of)
    count_conversions(conn, campaign, since, horizon, of, arm)
    count_also_entered(conn, campaign, since, horizon, of)
    count_call_tasks(conn, campaign, since, of)
    return Snapshot(found)


def complaints_since(conn: Connection, since: datetime) -> tuple[int, int]:
    """``(complaints, mails)``: spam complaints recorded and mails the mail server accepted
    since ``since`` (what mailbox providers' complaint rates compare)."""
    mails = conn.execute(
        sa.select(sa.func.count()).select_from(MESSAGES).where(MESSAGES.c.sent_at >= since)
    ).scalar_one()
    complaints = conn.execute(
        sa.select(sa.func.count())
        .select_from(RESPONSES)
        .where(RESPONSES.c.kind == ResponseKind.COMPLAINT.value, RESPONSES.c.occurred_at >= since)
    ).scalar_one()
    return int(complaints), int(mails)


class StatsQueries:
    """``store.stats``: each call is one transaction, like the rest of ``Store``."""

    def __init__(self, tx: Callable[[], AbstractContextManager[Connection]]) -> None:
        self._tx = tx

    def campaign_ids(self) -> list[str]:
        """Every campaign with enrollments."""
        with self._tx() as conn:
            return campaign_ids(conn)

    def complaints_since(self, since: datetime) -> tuple[int, int]:
        """``(complaints, mails)`` since ``since``: the sender's complaint rate."""
        with self._tx() as conn:
            return complaints_since(conn, since)

    def snapshot(
        self, *, campaign: str | None, since: datetime | None, horizon: timedelta
    ) -> Snapshot:
        """Every count behind funnels and lift, consistent with each other."""
        with self._tx() as conn:
            return snapshot(conn, campaign=campaign, since=since, horizon=horizon)

    def uplift(
        self,
        *,
        campaigns: list[str] | None,
        since: datetime | None,
        horizon: timedelta,
        now: datetime,
    ) -> list[UpliftCount]:
        """Who came back per campaign, group, segment and rhythm class, among enrollments
        that have had the whole ``horizon`` (:mod:`reengage.store.uplift`)."""
        with self._tx() as conn:
            return uplift_counts(conn, campaigns=campaigns, since=since, horizon=horizon, now=now)
