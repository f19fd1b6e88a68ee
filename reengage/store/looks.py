"""When the detection pass must look at each customer again (``customer_stats.look_again_at``)
and what its last whole pass was computed with (``detection_state``).

A pass looks at a customer, decides, and writes the earliest moment they could enter a
campaign as their record stands (or NULL: "at the next pass"; no date at all: "only when
something changes"). Whatever changes what detection reads about a customer — an activity,
their customer record, an enrollment that ends — makes them due again. The pass writes its
answer only over the ``look_version`` it read, so a change that lands while it decides is
never overwritten by an answer computed before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.store.tables import DETECTION_STATE, ENROLLMENTS, STATS

# A pass writes this for "no campaign can take them until something about them changes":
# far beyond any pass, and still a date every backend stores.
NEVER = datetime(3000, 1, 1, tzinfo=UTC)


def look_again(conn: Connection, customer_ids: Sequence[int]) -> None:
    """These customers are due at the next pass (something detection reads changed)."""
    conn.execute(
        STATS.update()
        .where(STATS.c.customer_id.in_(list(customer_ids)))
        .values(look_again_at=None, look_version=STATS.c.look_version + 1)
    )


def due_ids(conn: Connection, now: datetime, after: int, limit: int) -> list[int]:
    """Up to ``limit`` customers due at ``now``, in id order after ``after`` (the index on
    ``look_again_at``, then a sort of what it found)."""
    query = (
        sa.select(STATS.c.customer_id)
        .where(
            sa.or_(STATS.c.look_again_at.is_(None), STATS.c.look_again_at <= now),
            STATS.c.customer_id > after,
        )
        .order_by(STATS.c.customer_id)
        .limit(limit)
    )
    return [row[0] for row in conn.execute(query)]


def all_ids(conn: Connection, after: int, limit: int) -> list[int]:
    """Up to ``limit`` customers with stats, in id order after ``after`` (a whole pass)."""
    query = (
        sa.select(STATS.c.customer_id)
        .where(STATS.c.customer_id > after)
        .order_by(STATS.c.customer_id)
        .limit(limit)
    )
    return [row[0] for row in conn.execute(query)]


def versions(conn: Connection, customer_ids: Sequence[int]) -> dict[int, int]:
    """The look version of each of these customers, read before deciding about them."""
    query = sa.select(STATS.c.customer_id, STATS.c.look_version).where(
        STATS.c.customer_id.in_(list(customer_ids))
    )
    return {row[0]: row[1] for row in conn.execute(query)}


_WRITE = (
    STATS.update()
    .where(
        STATS.c.customer_id == sa.bindparam("b_id"),
        STATS.c.look_version == sa.bindparam("b_version"),
    )
    .values(look_again_at=sa.bindparam("b_when"))
)


def write_looks(conn: Connection, looks: Iterable[tuple[int, int, datetime | None]]) -> None:
    """``(customer, version read, when)``: the next look of each, unless they changed since."""
    rows = [{"b_id": c, "b_version": v, "b_when": w} for c, v, w in looks]
    if rows:
        conn.execute(_WRITE, rows)


def ended_since(conn: Connection, since: datetime) -> list[int]:
    """Customers with an enrollment that ended after ``since`` (completed or exited): a
    campaign that runs alone may take them now."""
    query = sa.select(ENROLLMENTS.c.customer_id).where(ENROLLMENTS.c.ended_at > since).distinct()
    return [row[0] for row in conn.execute(query)]


@dataclass(frozen=True)
class PassState:
    """What the last whole detection pass was computed with."""

    fingerprint: str
    population: list[tuple[str, float]]
    population_at: datetime
    updated_at: datetime


def state(conn: Connection) -> PassState | None:
    """The last whole pass's state, or None before the first."""
    row = conn.execute(sa.select(DETECTION_STATE).where(DETECTION_STATE.c.id == 1)).first()
    if row is None:
        return None
    return PassState(
        row.fingerprint,
        [(str(segment), float(gap)) for segment, gap in row.population],
        row.population_at,
        row.updated_at,
    )


def save_state(conn: Connection, saved: PassState) -> None:
    """Keep what a pass was computed with (one row, replaced)."""
    conn.execute(DETECTION_STATE.delete())
    conn.execute(
        DETECTION_STATE.insert().values(
            id=1,
            fingerprint=saved.fingerprint,
            population=[list(pair) for pair in saved.population],
            population_at=saved.population_at,
            updated_at=saved.updated_at,
        )
    )
