"""Bulk activity ingest with per-customer stats kept current in the same transaction.

New activities are inserted with one ``executemany`` per batch and folded into
``customer_stats`` with one upsert per batch: the stats are sums, counts, minima and maxima,
so the order activities arrive in does not matter. A corrected activity (same external id,
different content) is rare; its customers' stats are recomputed from their own rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from reengage.models import Activity, ActivityKind, CustomerStats
from reengage.store.sqlfuncs import greatest_of, least_of

ACTIVITIES: sa.Table = Activity.__table__  # type: ignore[attr-defined]  # sqlmodel sets it
STATS: sa.Table = CustomerStats.__table__  # type: ignore[attr-defined]
ORDER = ActivityKind.ORDER.value


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

    def content(self) -> tuple[Any, ...]:
        return (self.customer_id, self.kind, self.occurred_at, self.amount, self.margin)


@dataclass(slots=True)
class UpsertResult:
    """What a batch did: new rows, changed rows, and rows that were already there as given."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, other: UpsertResult) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged


def add_activities(conn: Connection, rows: Sequence[NewActivity], now: datetime) -> UpsertResult:
    """Insert new activities, update corrected ones, and keep ``customer_stats`` current."""
    latest = {row.external_id: row for row in rows}  # a key repeated in one batch: last wins
    existing = {
        r.external_id: r
        for r in _chunked_select(
            conn,
            sa.select(
                ACTIVITIES.c.external_id,
                ACTIVITIES.c.id,
                ACTIVITIES.c.customer_id,
                ACTIVITIES.c.kind,
                ACTIVITIES.c.occurred_at,
                ACTIVITIES.c.amount,
                ACTIVITIES.c.margin,
            ),
            ACTIVITIES.c.external_id,
            list(latest),
        )
    }
    result = UpsertResult()
    new: list[NewActivity] = []
    recompute: set[int] = set()
    for key, row in latest.items():
        old = existing.get(key)
        if old is None:
            new.append(row)
        elif (old.customer_id, old.kind, old.occurred_at, old.amount, old.margin) == row.content():
            result.unchanged += 1
        else:
            conn.execute(
                ACTIVITIES.update()
                .where(ACTIVITIES.c.id == old.id)
                .values(
                    customer_id=row.customer_id,
                    kind=row.kind,
                    occurred_at=row.occurred_at,
                    amount=row.amount,
                    margin=row.margin,
                )
            )
            recompute.update((old.customer_id, row.customer_id))
            result.updated += 1
    if new:
        _insert_activities(conn, new, now)
        result.inserted = len(new)
        _fold_into_stats(conn, [a for a in new if a.customer_id not in recompute], now)
    if recompute:
        recompute_stats(conn, recompute, now)
    return result


def _insert_activities(conn: Connection, rows: list[NewActivity], now: datetime) -> None:
    # The hot path of every import: going straight to the driver's executemany skips
    # SQLAlchemy's per-row parameter processing, which costs more than SQLite's own insert.
    # Timestamps are written exactly as the UTCDateTime column type writes them.
    to_db = _sqlite_time if conn.dialect.name == "sqlite" else _naive_utc
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
    return _naive_utc(value).isoformat(sep=" ", timespec="microseconds")


def _fold_into_stats(conn: Connection, rows: Iterable[NewActivity], now: datetime) -> None:
    deltas: dict[int, dict[str, Any]] = {}
    for a in rows:
        d = deltas.get(a.customer_id)
        if d is None:
            d = deltas[a.customer_id] = {
                "customer_id": a.customer_id,
                "activity_count": 0,
                "order_count": 0,
                "first_activity_at": a.occurred_at,
                "last_activity_at": a.occurred_at,
                "first_order_at": None,
                "last_order_at": None,
                "total_value": 0.0,
                "total_margin": 0.0,
                "updated_at": now,
            }
        d["activity_count"] += 1
        d["first_activity_at"] = min(d["first_activity_at"], a.occurred_at)
        d["last_activity_at"] = max(d["last_activity_at"], a.occurred_at)
        if a.kind == ORDER:
            d["order_count"] += 1
            first, last = d["first_order_at"], d["last_order_at"]
            d["first_order_at"] = a.occurred_at if first is None else min(first, a.occurred_at)
            d["last_order_at"] = a.occurred_at if last is None else max(last, a.occurred_at)
        d["total_value"] += a.amount or 0.0
        d["total_margin"] += a.margin or 0.0
    if deltas:
        conn.execute(_stats_upsert(conn.dialect.name), list(deltas.values()))


def _stats_upsert(dialect: str) -> sa.Insert:
    # One statement folds a batch's deltas into existing rows: counts and sums add up,
    # first/last take the extreme. Commutative, so out-of-order batches give the same stats.
    insert = postgresql.insert(STATS) if dialect == "postgresql" else sqlite.insert(STATS)
    old, new = STATS.c, insert.excluded
    return insert.on_conflict_do_update(
        index_elements=[old.customer_id],
        set_={
            "activity_count": old.activity_count + new.activity_count,
            "order_count": old.order_count + new.order_count,
            "first_activity_at": least_of(old.first_activity_at, new.first_activity_at),
            "last_activity_at": greatest_of(old.last_activity_at, new.last_activity_at),
            "first_order_at": least_of(old.first_order_at, new.first_order_at),
            "last_order_at": greatest_of(old.last_order_at, new.last_order_at),
            "total_value": old.total_value + new.total_value,
            "total_margin": old.total_margin + new.total_margin,
            "updated_at": new.updated_at,
        },
    )


def recompute_stats(conn: Connection, customer_ids: Iterable[int], now: datetime) -> None:
    """Rebuild the stats of a few customers from their own activities (index range scans)."""
    ids = sorted(set(customer_ids))
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


def _chunked_select(
    conn: Connection,
    query: sa.Select[Any],
    column: sa.ColumnElement[Any],
    keys: list[Any],
    chunk: int = 10_000,
) -> Iterable[sa.Row[Any]]:
    # Bounded IN lists keep SQLite under its bound-parameter limit.
    for start in range(0, len(keys), chunk):
        yield from conn.execute(query.where(column.in_(keys[start : start + chunk])))
