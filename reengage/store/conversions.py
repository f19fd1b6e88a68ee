"""Conversions in SQL: new activities credited to the enrollment that was reaching out.

Which enrollment an activity is credited to is :func:`crediting`, a pure function of the
customer's enrollments, the activity's moment and the attribution window (set when the
``Store`` is built); :func:`attribute` reads what it needs and records the credits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.models import MessageStatus
from reengage.store.responses import record
from reengage.store.tables import ACTIVITIES, ENROLLMENTS, MESSAGES
from reengage.timeutil import as_utc


def attribute(
    conn: Connection, activity_keys: Iterable[str], window: timedelta, now: datetime
) -> int:
    """Credit new activities to the enrollment that was reaching out when they happened.

    An activity after a customer enrolled, and within ``window`` of the last mail (or of
    enrolling, for holdout members, who get no mail), is a conversion of that enrollment's
    campaign and of the last step sent before it. The most recent such enrollment wins;
    each activity is credited once. The two windows are not alike (a treated customer's
    runs from the last mail, later than a holdout member's), so these credits say what a
    campaign's mail led to, not its lift: ``reengage stats`` measures lift with one window
    from enrolling for both groups. Returns how many conversions were recorded.
    """
    keys = list(activity_keys)
    if not keys:
        return 0
    activities: list[Any] = []
    for start in range(0, len(keys), 5000):
        chunk = keys[start : start + 5000]
        activities.extend(
            conn.execute(
                sa.select(
                    ACTIVITIES.c.id,
                    ACTIVITIES.c.customer_id,
                    ACTIVITIES.c.kind,
                    ACTIVITIES.c.occurred_at,
                    ACTIVITIES.c.amount,
                ).where(ACTIVITIES.c.external_id.in_(chunk))
            ).all()
        )
    customers = sorted({row.customer_id for row in activities})
    enrollments: dict[int, list[Any]] = {}
    for start in range(0, len(customers), 5000):
        query = sa.select(
            ENROLLMENTS.c.id,
            ENROLLMENTS.c.customer_id,
            ENROLLMENTS.c.campaign_id,
            ENROLLMENTS.c.status,
            ENROLLMENTS.c.enrolled_at,
            ENROLLMENTS.c.last_step_at,
        ).where(ENROLLMENTS.c.customer_id.in_(customers[start : start + 5000]))
        for row in conn.execute(query):
            enrollments.setdefault(row.customer_id, []).append(row)
    if not enrollments:  # the common case of a bulk import: nobody was ever contacted
        return 0
    credited = 0
    for activity in activities:
        when = as_utc(activity.occurred_at)
        best = crediting(enrollments.get(activity.customer_id, ()), when, window)
        if best is None:
            continue
        step = _last_step_before(conn, best.id, when)
        credited += record(
            conn,
            "conversion",
            when,
            source="import",
            customer_id=activity.customer_id,
            detail=activity.kind,
            value=activity.amount,
            dedupe_key=f"conversion:{activity.id}",
            credit=(best.id, best.campaign_id, *(step or (None, None))),
        )
    return credited


def crediting(candidates: Iterable[Any], when: datetime, window: timedelta) -> Any | None:
    """Of a customer's enrollments (rows with ``enrolled_at`` and ``last_step_at``), the one
    an activity at ``when`` is credited to: enrolled before it, with ``when`` within
    ``window`` of its last mail (or of enrolling), the latest enrolled winning. Pure."""
    best = None
    for e in candidates:
        enrolled = as_utc(e.enrolled_at)
        anchor = as_utc(e.last_step_at) if e.last_step_at else enrolled
        if enrolled < when <= max(anchor, enrolled) + window and (
            best is None or enrolled > as_utc(best.enrolled_at)
        ):
            best = e
    return best


def _last_step_before(conn: Connection, enrollment_id: int, when: datetime) -> Any | None:
    query = (
        sa.select(MESSAGES.c.id, MESSAGES.c.step_key)
        .where(
            MESSAGES.c.enrollment_id == enrollment_id,
            MESSAGES.c.status == MessageStatus.SENT.value,
            MESSAGES.c.sent_at <= when,
        )
        .order_by(MESSAGES.c.sent_at.desc())
        .limit(1)
    )
    return conn.execute(query).first()
