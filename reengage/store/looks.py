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
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from reengage.horizon import HorizonChoice, HorizonSource
from reengage.models import EnrollmentStatus
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
        .where(_due(now), STATS.c.customer_id > after)
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


@dataclass(frozen=True)
class Chunk:
    """Customers a pass decides together: those with stats and ``after < id <= last``, or
    only those due at ``due_at`` among them, with their look versions.

    A chunk's reads select it as a set, never as a list of ids in the statement's text: a
    whole pass's chunk is a range of the primary key; a chunk of who is due is that range
    and the due condition on SQLite, and one array of its ids (``= ANY(:ids)``) on
    PostgreSQL, whose planner, given a range that spans most of the table (the due are
    few and spread out), would rather read whole tables than the few thousand rows asked
    for. ``tests/integration/test_detection_plans.py`` explains each read on a filled
    database, under generic plans too.
    """

    after: int
    last: int
    due_at: datetime | None  # None: everyone in the range (a whole pass)
    versions: dict[int, int]  # each customer's look version, read with the chunk
    as_array: bool = False  # select by one array of the ids (PostgreSQL, due chunks)

    @property
    def ids(self) -> list[int]:
        """The chunk's customers, in id order."""
        return list(self.versions)


def next_chunk(
    conn: Connection, after: int, limit: int, due_at: datetime | None, upto: int | None = None
) -> Chunk | None:
    """The next ``limit`` customers after ``after`` (due at ``due_at``, or everyone; none
    beyond ``upto``), with their look versions, read before anything is decided about them;
    None past the end."""
    query = (
        sa.select(STATS.c.customer_id, STATS.c.look_version)
        .where(STATS.c.customer_id > after)
        .order_by(STATS.c.customer_id)
        .limit(limit)
    )
    if due_at is not None:
        query = query.where(_due(due_at))
    if upto is not None:
        query = query.where(STATS.c.customer_id <= upto)
    versions = {row[0]: row[1] for row in conn.execute(query)}
    if not versions:
        return None
    as_array = due_at is not None and conn.dialect.name == "postgresql"
    return Chunk(after, max(versions), due_at, versions, as_array)


def in_chunk(chunk: Chunk, *keys: sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
    """The condition that selects the chunk's customers from ``customer_stats`` (which the
    query must read or join on the customer id) and from each table whose customer id is in
    ``keys``: the condition is stated on every table's own key, so each table's index
    bounds its own scan (the planner carries equalities across a join, not ranges)."""
    conditions = [key_in(chunk, key) for key in (STATS.c.customer_id, *keys)]
    if chunk.due_at is not None and not chunk.as_array:
        conditions.append(_due(chunk.due_at))
    return sa.and_(*conditions)


def key_in(chunk: Chunk, key: sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
    """``key`` is one of the chunk's customers (its range, or its array of ids)."""
    if chunk.as_array:
        return key == sa.any_(sa.literal(chunk.ids, postgresql.ARRAY(sa.Integer)))
    return sa.and_(key > chunk.after, key <= chunk.last)


def _due(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(STATS.c.look_again_at.is_(None), STATS.c.look_again_at <= now)


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
    campaign that runs alone may take them now. A holdout enrollment ends as the pass that
    made it records it, and that pass already dated the customer's next look knowing it, so
    it does not count (otherwise every holdout member is looked at again by each pass of the
    next hour)."""
    query = (
        sa.select(ENROLLMENTS.c.customer_id)
        .where(
            ENROLLMENTS.c.ended_at > since, ENROLLMENTS.c.status != EnrollmentStatus.HOLDOUT.value
        )
        .distinct()
    )
    return [row[0] for row in conn.execute(query)]


@dataclass(frozen=True)
class PassState:
    """What the last whole detection pass was computed with."""

    fingerprint: str
    population: list[tuple[str, float]]
    population_at: datetime
    updated_at: datetime
    # The rhythm horizon chosen with the population, kept as long as it (None: not kept yet).
    horizon: HorizonChoice | None = None


def horizon_to_json(choice: HorizonChoice | None) -> dict[str, Any] | None:
    """A kept horizon as the ``horizon`` JSON column holds it."""
    if choice is None:
        return None
    return {
        "days": choice.days,
        "source": choice.source.value,
        "median_gap_days": choice.median_gap_days,
        "regular_buyers": choice.regular_buyers,
    }


def horizon_from_json(value: dict[str, Any] | None) -> HorizonChoice | None:
    """The kept horizon of a ``horizon`` JSON column (None: none kept, or unreadable)."""
    if not value or value.get("source") not in set(HorizonSource):
        return None
    gap = value.get("median_gap_days")
    return HorizonChoice(
        float(value["days"]),
        HorizonSource(value["source"]),
        None if gap is None else float(gap),
        int(value.get("regular_buyers") or 0),
    )


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
        horizon_from_json(row.horizon),
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
            horizon=horizon_to_json(saved.horizon),
        )
    )
