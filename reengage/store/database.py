"""``Store``: the narrow door to the database that the use cases (ingest, jobs, …) go through."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic_core import PydanticUndefined
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel

from reengage.errors import StoreError
from reengage.models import Activity, Customer, CustomerStats, Rep
from reengage.store import migrate
from reengage.store.activities import (
    ACTIVITIES,
    STATS,
    NewActivity,
    UpsertResult,
    add_activities,
)
from reengage.store.engine import check_connection, create_engine
from reengage.timeutil import as_utc

CUSTOMERS: sa.Table = Customer.__table__  # type: ignore[attr-defined]  # sqlmodel sets it
REPS: sa.Table = Rep.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Overview:
    """Headline counts for the CLI and the demo."""

    customers: int
    reps: int
    activities: int
    customers_without_activity: int
    first_activity_at: datetime | None
    last_activity_at: datetime | None


class Store:
    """All SQL goes through here. Each call is one short transaction unless pinned (dry runs)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pinned: Connection | None = None

    @classmethod
    def open(cls, url: str, *, upgrade: bool = False) -> Store:
        """Connect to ``url``; with ``upgrade`` bring the schema to head, else require it."""
        store = cls(create_engine(url))
        try:
            check_connection(store.engine)
            if upgrade:
                migrate.upgrade(store.engine)
            else:
                migrate.require_current(store.engine)
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        if self._pinned is not None:
            yield self._pinned
            return
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {exc}") from exc

    @contextmanager
    def rolled_back(self) -> Iterator[None]:
        """Run everything inside in one transaction that is rolled back (``--dry-run``)."""
        with self.engine.connect() as conn:
            trans = conn.begin()
            self._pinned = conn
            try:
                yield
            finally:
                self._pinned = None
                trans.rollback()

    # -- reps and customers -------------------------------------------------------------

    def upsert_reps(self, rows: Sequence[dict[str, Any]], now: datetime) -> UpsertResult:
        """Insert or update reps by ``external_id``; only the keys given are written."""
        with self._tx() as conn:
            return _upsert_by_external_id(conn, REPS, _defaults(Rep), rows, now)

    def upsert_customers(self, rows: Sequence[dict[str, Any]], now: datetime) -> UpsertResult:
        """Insert or update customers by ``external_id``; only the keys given are written."""
        with self._tx() as conn:
            return _upsert_by_external_id(conn, CUSTOMERS, _defaults(Customer), rows, now)

    def customer_ids(self, external_ids: Iterable[str]) -> dict[str, int]:
        """Map customers' external ids to internal ids; unknown ids are absent."""
        keys = list(set(external_ids))
        with self._tx() as conn:
            return _lookup(conn, CUSTOMERS, keys)

    def known_rep_ids(self, external_ids: Iterable[str]) -> set[str]:
        """Which of these rep external ids exist."""
        keys = list(set(external_ids))
        with self._tx() as conn:
            return set(_lookup(conn, REPS, keys))

    def add_activities(self, rows: Sequence[NewActivity], now: datetime) -> UpsertResult:
        """Store activities (idempotent on external id) and update the customers' stats."""
        with self._tx() as conn:
            return add_activities(conn, rows, now)

    # -- reads ----------------------------------------------------------------------------

    def overview(self) -> Overview:
        """Counts and the activity date range."""
        with self._tx() as conn:
            customers = conn.scalar(sa.select(sa.func.count()).select_from(CUSTOMERS)) or 0
            reps = conn.scalar(sa.select(sa.func.count()).select_from(REPS)) or 0
            totals = conn.execute(
                sa.select(
                    sa.func.coalesce(sa.func.sum(STATS.c.activity_count), 0),
                    sa.func.count(),
                    sa.func.min(STATS.c.first_activity_at),
                    sa.func.max(STATS.c.last_activity_at),
                ).where(STATS.c.activity_count > 0)
            ).one()
        return Overview(
            customers=customers,
            reps=reps,
            activities=int(totals[0]),
            customers_without_activity=customers - int(totals[1]),
            first_activity_at=_aware(totals[2]),
            last_activity_at=_aware(totals[3]),
        )

    def customers_with_stats(self) -> Iterator[tuple[Customer, CustomerStats]]:
        """Every customer that has activity, with their stats (streamed)."""
        with self._tx() as conn:
            query = (
                sa.select(CUSTOMERS, STATS)
                .join(STATS, STATS.c.customer_id == CUSTOMERS.c.id)
                .order_by(CUSTOMERS.c.id)
            )
            for row in conn.execution_options(yield_per=2000).execute(query):
                mapping = row._mapping
                yield (
                    Customer.model_validate({c.name: mapping[c] for c in CUSTOMERS.c}),
                    CustomerStats.model_validate({c.name: mapping[c] for c in STATS.c}),
                )

    def get_customer(self, external_id: str) -> tuple[Customer, CustomerStats | None] | None:
        """One customer and their stats by external id, or None."""
        with self._tx() as conn:
            row = conn.execute(
                sa.select(CUSTOMERS).where(CUSTOMERS.c.external_id == external_id)
            ).one_or_none()
            if row is None:
                return None
            stats = conn.execute(
                sa.select(STATS).where(STATS.c.customer_id == row.id)
            ).one_or_none()
        return (
            Customer.model_validate(dict(row._mapping)),
            CustomerStats.model_validate(dict(stats._mapping)) if stats else None,
        )

    def activities_of(self, customer_id: int) -> list[Activity]:
        """A customer's activities, oldest first (an index range scan)."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(ACTIVITIES)
                .where(ACTIVITIES.c.customer_id == customer_id)
                .order_by(ACTIVITIES.c.occurred_at)
            )
            return [Activity.model_validate(dict(r._mapping)) for r in rows]


def _aware(value: datetime | None) -> datetime | None:
    # Aggregates bypass the column type, so SQLite hands back text and PostgreSQL naive values.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return as_utc(value)


def _defaults(model: type[SQLModel]) -> dict[str, Callable[[], Any]]:
    """Column defaults of a model, as factories, for rows that supply only some columns."""
    out: dict[str, Callable[[], Any]] = {}
    for name, info in model.model_fields.items():
        if name == "id":
            continue
        if info.default_factory is not None:
            out[name] = info.default_factory  # type: ignore[assignment]  # no-arg factories only
        elif info.default is not PydanticUndefined:
            out[name] = _constant(info.default)
    return out


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _lookup(conn: Connection, table: sa.Table, keys: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(keys), 10_000):
        chunk = keys[start : start + 10_000]
        query = sa.select(table.c.external_id, table.c.id).where(table.c.external_id.in_(chunk))
        found.update({r.external_id: r.id for r in conn.execute(query)})
    return found


def _upsert_by_external_id(
    conn: Connection,
    table: sa.Table,
    defaults: dict[str, Callable[[], Any]],
    rows: Sequence[dict[str, Any]],
    now: datetime,
) -> UpsertResult:
    """Upsert rows keyed by ``external_id``; a row's absent keys keep their stored value."""
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:  # the same key twice in one batch: later values win, field by field
        merged.setdefault(row["external_id"], {}).update(row)
    existing: dict[str, sa.Row[Any]] = {}
    keys = list(merged)
    for start in range(0, len(keys), 10_000):
        query = sa.select(table).where(table.c.external_id.in_(keys[start : start + 10_000]))
        existing.update({r.external_id: r for r in conn.execute(query)})

    result = UpsertResult()
    inserts: list[dict[str, Any]] = []
    updates: dict[frozenset[str], list[dict[str, Any]]] = {}
    for key, row in merged.items():
        old = existing.get(key)
        if old is None:
            full = {name: make() for name, make in defaults.items()}
            full.update(row, created_at=now, updated_at=now)
            inserts.append(full)
            continue
        changed = {k: v for k, v in row.items() if getattr(old, k) != v}
        if not changed:
            result.unchanged += 1
            continue
        changed["updated_at"] = now
        # Bind names must differ from column names in an executemany UPDATE.
        params = {f"v_{k}": v for k, v in changed.items()}
        params["_id"] = old.id
        updates.setdefault(frozenset(changed), []).append(params)
    if inserts:
        conn.execute(table.insert(), inserts)
        result.inserted = len(inserts)
    for columns, batch in updates.items():
        statement = (
            table.update()
            .where(table.c.id == sa.bindparam("_id"))
            .values({c: sa.bindparam(f"v_{c}") for c in columns})
        )
        conn.execute(statement, batch)
        result.updated += len(batch)
    return result
