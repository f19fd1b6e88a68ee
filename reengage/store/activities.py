"""Bulk activity ingest with per-customer stats kept current in the same transaction; and
the activities stored with a negative amount (refunds from before import refused them).

New activities are inserted with one ``executemany`` per batch and folded into the
customers' ``customer_stats`` rows (read, fold with ``history.Summary``, write back): the
fold is order-independent, so late and out-of-order activities cost the same as any other.
A corrected activity (same external id, different content) is rare; its customers' stats
are recomputed from their own rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.detect import gap_floor
from reengage.history import Event, Summary, ring_from_json, ring_to_json
from reengage.models import UTCDateTime
from reengage.store.engine import upsert_insert
from reengage.store.tables import ACTIVITIES, CUSTOMERS, STATS


@dataclass(frozen=True)
class NegativeAmounts:
    """Activities stored with an amount below zero (refunds imported before import refused
    them): how many, of how many customers, and the first few of each by external id."""

    activities: int
    customers: int
    first_customers: list[str]
    first_activities: list[str]


class NewActivity(NamedTuple):
    """An activity ready to store: the customer is resolved, the key is final.

    A NamedTuple, not a dataclass: imports build millions of these and tuples are cheap.
    """

    external_id: str
    customer_id: int
    kind: str
    occurred_at: datetime
    amount: float | None
    margin: float | None


@dataclass(slots=True)
class UpsertResult:
    """What a batch did: new rows, changed rows, and rows that were already there as given."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    # The keys of this batch's new activities (not summed by ``add``: a big import would
    # otherwise keep every key in memory).
    inserted_keys: list[str] = field(default_factory=list)
    # The ids of the rows this batch changed (not summed by ``add`` either).
    changed_ids: list[int] = field(default_factory=list)

    def add(self, other: UpsertResult) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged


def add_activities(conn: Connection, rows: Sequence[NewActivity], now: datetime) -> UpsertResult:
    """Insert new activities, update corrected ones, and keep ``customer_stats`` current."""
    latest = {row.external_id: row for row in rows}  # a key repeated in one batch: last wins
    to_db = _time_writer(conn)
    existing = _existing_activities(conn, list(latest))
    result = UpsertResult()
    new: list[NewActivity] = []
    recompute: set[int] = set()
    for key, row in latest.items():
        old = existing.get(key)
        if old is None:
            new.append(row)
        elif (old[2], old[3], old[4], old[5], old[6]) == (
            row.customer_id,
            row.kind,
            to_db(row.occurred_at),
            row.amount,
            row.margin,
        ):
            result.unchanged += 1
        else:
            conn.execute(
                ACTIVITIES.update()
                .where(ACTIVITIES.c.id == old[1])
                .values(
                    customer_id=row.customer_id,
                    kind=row.kind,
                    occurred_at=row.occurred_at,
                    amount=row.amount,
                    margin=row.margin,
                )
            )
            recompute.update((old[2], row.customer_id))
            result.updated += 1
    if new:
        _insert_activities(conn, new, now)
        result.inserted = len(new)
        result.inserted_keys = [a.external_id for a in new]
        _fold_into_stats(conn, [a for a in new if a.customer_id not in recompute], now)
    if recompute:
        recompute_stats(conn, recompute, now)
    return result


def _existing_activities(conn: Connection, keys: list[str]) -> dict[str, tuple[Any, ...]]:
    """Stored ``(external_id, id, customer_id, kind, occurred_at, amount, margin)`` by key.

    Raw driver rows (timestamps as the database stores them): building this IN list
    through SQLAlchemy costs more per key than the lookup itself.
    """
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    found: dict[str, tuple[Any, ...]] = {}
    for start in range(0, len(keys), 5000):
        chunk = keys[start : start + 5000]
        sql = (
            "SELECT external_id, id, customer_id, kind, occurred_at, amount, margin "
            f"FROM activities WHERE external_id IN ({', '.join([mark] * len(chunk))})"
        )
        found.update((row[0], tuple(row)) for row in conn.exec_driver_sql(sql, tuple(chunk)))
    return found


def _time_writer(conn: Connection) -> Callable[[datetime], Any]:
    """How this database's driver wants a UTC timestamp written (and hands it back)."""
    return _sqlite_time if conn.dialect.name == "sqlite" else _naive_utc


def _insert_activities(conn: Connection, rows: list[NewActivity], now: datetime) -> None:
    # The hot path of every import: going straight to the driver's executemany skips
    # SQLAlchemy's per-row parameter processing, which costs more than SQLite's own insert.
    # Timestamps are written exactly as the UTCDateTime column type writes them.
    to_db = _time_writer(conn)
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    created = to_db(now)
    conn.exec_driver_sql(
        "INSERT INTO activities (external_id, customer_id, kind, occurred_at, amount, margin, "
        f"created_at) VALUES ({', '.join([mark] * 7)})",
        [
            (
                a.external_id,
                a.customer_id,
                a.kind,
                to_db(a.occurred_at),
                a.amount,
                a.margin,
                created,
            )
            for a in rows
        ],
    )


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not UTC:  # parsers already hand over UTC; convert anything else
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None)


def _sqlite_time(value: datetime) -> str:
    # SQLAlchemy's SQLite DATETIME storage format: "YYYY-MM-DD HH:MM:SS.ffffff".
    if value.tzinfo is UTC:  # the parsers' output: drop the "+00:00" instead of converting
        return value.isoformat(sep=" ", timespec="microseconds")[:-6]
    return _naive_utc(value).isoformat(sep=" ", timespec="microseconds")


def _fold_into_stats(conn: Connection, rows: Iterable[NewActivity], now: datetime) -> None:
    by_customer: dict[int, list[Event]] = {}
    for a in rows:
        by_customer.setdefault(a.customer_id, []).append(
            Event(a.kind, a.occurred_at, a.amount, a.margin)
        )
    if not by_customer:
        return
    ids = sorted(by_customer)
    # Make sure each customer has a row, then read (and on PostgreSQL lock) them all: two
    # importers touching the same customer take turns instead of overwriting each other.
    for start in range(0, len(ids), 10_000):
        conn.execute(_insert_missing(conn.dialect.name, ids[start : start + 10_000], now))
    updates: list[tuple[Any, ...]] = []
    to_db = _time_writer(conn)
    for start in range(0, len(ids), 10_000):
        query = sa.select(STATS).where(STATS.c.customer_id.in_(ids[start : start + 10_000]))
        if conn.dialect.name == "postgresql":
            query = query.order_by(STATS.c.customer_id).with_for_update()
        for row in conn.execute(query):
            summary = summary_of(row).fold(by_customer[row.customer_id])
            updates.append(_row_of(summary, row.customer_id, row.look_version, now, to_db))
    # Straight to the driver, like the activity insert: per-row parameter processing in
    # SQLAlchemy would cost more than the update itself.
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(_STATS_UPDATE_SQL.replace("?", mark), updates)


def _insert_missing(dialect: str, ids: list[int], now: datetime) -> Any:
    """Empty stats rows for customers that have none, carrying their segment along."""
    insert = upsert_insert(dialect, STATS)
    source = sa.select(
        CUSTOMERS.c.id,
        CUSTOMERS.c.segment,
        sa.literal(0),
        sa.literal(0),
        sa.literal(0.0),
        sa.literal(0.0),
        sa.literal([], sa.JSON),
        sa.literal(now, UTCDateTime),
    ).where(CUSTOMERS.c.id.in_(ids))
    columns = [
        "customer_id",
        "segment",
        "activity_count",
        "order_count",
        "total_value",
        "total_margin",
        "recent_orders",
        "updated_at",
    ]
    return insert.from_select(columns, source).on_conflict_do_nothing(
        index_elements=[STATS.c.customer_id]
    )


# segment is kept in step with customers by the customer upsert, not by the fold.
_STATS_COLUMNS = [c.name for c in STATS.c if c.name not in ("customer_id", "segment")]
_STATS_UPDATE_SQL = (
    f"UPDATE customer_stats SET {', '.join(f'{name} = ?' for name in _STATS_COLUMNS)} "
    "WHERE customer_id = ?"
)


def summary_of(row: Any) -> Summary:
    """Rebuild a :class:`Summary` from a ``customer_stats`` row."""
    return Summary(
        activity_count=row.activity_count,
        order_count=row.order_count,
        first_activity_at=row.first_activity_at,
        last_activity_at=row.last_activity_at,
        first_order_at=row.first_order_at,
        last_order_at=row.last_order_at,
        total_value=row.total_value,
        total_margin=row.total_margin,
        recent_orders=ring_from_json(row.recent_orders),
    )


def _row_of(
    summary: Summary,
    customer_id: int,
    look_version: int,
    now: datetime,
    to_db: Callable[[datetime], Any],
) -> tuple[Any, ...]:
    """Parameters for :data:`_STATS_UPDATE_SQL`, in :data:`_STATS_COLUMNS` order."""
    occasions = summary.occasion_totals()
    declines = summary.declines(occasions)
    values = {
        "activity_count": summary.activity_count,
        "order_count": summary.order_count,
        "first_activity_at": _maybe(to_db, summary.first_activity_at),
        "last_activity_at": _maybe(to_db, summary.last_activity_at),
        "first_order_at": _maybe(to_db, summary.first_order_at),
        "last_order_at": _maybe(to_db, summary.last_order_at),
        "total_value": summary.total_value,
        "total_margin": summary.total_margin,
        "recent_orders": json.dumps(ring_to_json(summary.recent_orders)),
        "typical_gap_days": (typical := summary.typical_gap_days(occasions)),
        "gap_floor_days": gap_floor(typical, summary.order_count),
        "count_ratio": declines.count_ratio,
        "aov_ratio": declines.aov_ratio,
        "margin_ratio": declines.margin_ratio,
        "updated_at": to_db(now),
        # What detection knew of them changed: it looks again at its next pass.
        "look_again_at": None,
        "look_version": look_version + 1,
    }
    return (*(values[name] for name in _STATS_COLUMNS), customer_id)


def _maybe(convert: Callable[[datetime], Any], value: datetime | None) -> Any:
    return None if value is None else convert(value)


def recompute_stats(conn: Connection, customer_ids: Iterable[int], now: datetime) -> None:
    """Rebuild the stats of a few customers from their own activities (index range scans)."""
    ids = sorted(set(customer_ids))
    versions = dict(
        conn.execute(
            sa.select(STATS.c.customer_id, STATS.c.look_version).where(STATS.c.customer_id.in_(ids))
        ).all()
    )
    conn.execute(STATS.delete().where(STATS.c.customer_id.in_(ids)))
    rows = conn.execute(
        sa.select(
            ACTIVITIES.c.external_id,
            ACTIVITIES.c.customer_id,
            ACTIVITIES.c.kind,
            ACTIVITIES.c.occurred_at,
            ACTIVITIES.c.amount,
            ACTIVITIES.c.margin,
        ).where(ACTIVITIES.c.customer_id.in_(ids))
    )
    _fold_into_stats(conn, (NewActivity(*r) for r in rows), now)
    # The rows were made anew: their look versions go on from the old ones, never back to
    # a number a detection pass may have read before (it would write over the change).
    for customer_id, version in versions.items():
        conn.execute(
            STATS.update()
            .where(STATS.c.customer_id == customer_id)
            .values(look_version=version + 2, look_again_at=None)
        )


def negative_amounts(conn: Connection, first: int = 5) -> NegativeAmounts:
    """Activities stored with ``amount < 0`` (import refuses them now; older data may hold
    some): how many, of how many customers, the first ``first`` of each by external id."""
    negative = ACTIVITIES.c.amount < 0
    counted = conn.execute(
        sa.select(sa.func.count(), sa.func.count(sa.distinct(ACTIVITIES.c.customer_id)))
        .select_from(ACTIVITIES)
        .where(negative)
    ).one()
    if not counted[0]:
        return NegativeAmounts(0, 0, [], [])
    customers = conn.scalars(
        sa.select(CUSTOMERS.c.external_id)
        .where(CUSTOMERS.c.id.in_(sa.select(ACTIVITIES.c.customer_id).where(negative)))
        .order_by(CUSTOMERS.c.external_id)
        .limit(first)
    ).all()
    activities = conn.scalars(
        sa.select(ACTIVITIES.c.external_id)
        .where(negative)
        .order_by(ACTIVITIES.c.external_id)
        .limit(first)
    ).all()
    return NegativeAmounts(counted[0], counted[1], list(customers), list(activities))
