"""``store.customers``: customers, reps and activities — their imports and lookups.

Each method is one transaction. Activities are folded into the customers' running
statistics by :mod:`reengage.store.activities`; a new one is credited to the mail before it
(:mod:`reengage.store.conversions`) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm
from pydantic_core import PydanticUndefined
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from reengage.models import Activity, Customer, CustomerStats, CustomerStatus, Rep
from reengage.store import conversions, looks
from reengage.store.activities import (
    NegativeAmounts,
    NewActivity,
    UpsertResult,
    add_activities,
    negative_amounts,
)
from reengage.store.tables import ACTIVITIES, CUSTOMERS, REPS, STATS, SUPPRESSIONS
from reengage.timeutil import as_utc


@dataclass(frozen=True)
class Overview:
    """Headline counts for the CLI and the demo."""

    customers: int
    reps: int
    activities: int
    customers_without_activity: int
    first_activity_at: datetime | None
    last_activity_at: datetime | None


class CustomerBook:
    """``store.customers``: each method is one transaction."""

    def __init__(
        self, tx: Callable[[], AbstractContextManager[Connection]], *, attribution_window: timedelta
    ) -> None:
        self._tx = tx
        # An activity this long after a customer's last mail is not credited to it.
        self.attribution_window = attribution_window

    def upsert_reps(self, rows: Sequence[dict[str, Any]], now: datetime) -> UpsertResult:
        """Insert or update reps by ``external_id``; only the keys given are written. A new
        rep given no name is called by their email's local part until a name comes."""
        with self._tx() as conn:
            return _upsert_by_external_id(
                conn,
                REPS,
                _defaults(Rep),
                rows,
                now,
                on_insert=lambda row: {"name": str(row.get("email", "")).split("@")[0]},
            )

    def upsert_customers(self, rows: Sequence[dict[str, Any]], now: datetime) -> UpsertResult:
        """Insert or update customers by ``external_id``; only the keys given are written."""
        with self._tx() as conn:
            result = _upsert_by_external_id(conn, CUSTOMERS, _defaults(Customer), rows, now)
            # What audiences read about them (consent, tags, rep…) changed: detection
            # looks at them again. (New customers have no activity yet to look at.)
            for start in range(0, len(result.changed_ids), 5000):
                looks.look_again(conn, result.changed_ids[start : start + 5000])
            if any("segment" in row for row in rows):
                # customer_stats keeps a copy of the segment for join-free detection.
                keys = list({row["external_id"] for row in rows if "segment" in row})
                ids = sa.select(CUSTOMERS.c.id).where(CUSTOMERS.c.external_id.in_(keys))
                segment = (
                    sa.select(CUSTOMERS.c.segment)
                    .where(CUSTOMERS.c.id == STATS.c.customer_id)
                    .scalar_subquery()
                )
                conn.execute(
                    STATS.update().where(STATS.c.customer_id.in_(ids)).values(segment=segment)
                )
            return result

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
            result = add_activities(conn, rows, now)
            if result.inserted_keys:
                conversions.attribute(conn, result.inserted_keys, self.attribution_window, now)
            return result

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
                    _customer({c.name: mapping[c] for c in CUSTOMERS.c}),
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
            _customer(dict(row._mapping)),
            CustomerStats.model_validate(dict(stats._mapping)) if stats else None,
        )

    def contactable(
        self,
        customers: Iterable[int] | looks.Chunk,
        now: datetime | None = None,
        *,
        whatever_their_pause: bool = False,
        lists: bool = True,
    ) -> dict[int, dict[str, Any]]:
        """Of these customers, those we may mail (consent, not do-not-contact, address not
        suppressed, not paused at ``now``), with the facts audience filters and send
        windows need, ``paused_until`` among them. ``whatever_their_pause`` keeps the paused
        too, for a caller that weighs the pause itself.

        ``customers`` is ids, or a detection pass's chunk (selected as a set, see
        :class:`reengage.store.looks.Chunk`). ``lists=False`` leaves out ``tags``
        and ``interests`` (JSON, decoded row by row) for a caller no filter of which reads
        them; audience filters take a missing list as empty."""
        suppressed = sa.exists().where(SUPPRESSIONS.c.email == sa.func.lower(CUSTOMERS.c.email))
        unpaused: sa.ColumnElement[bool] = CUSTOMERS.c.paused_until.is_(None)
        if whatever_their_pause:
            unpaused = sa.true()
        elif now is not None:
            unpaused = unpaused | (CUSTOMERS.c.paused_until <= now)
        columns = [
            CUSTOMERS.c.id,
            CUSTOMERS.c.locale,
            CUSTOMERS.c.timezone,
            CUSTOMERS.c.company,
            CUSTOMERS.c.rep_external_id,
            CUSTOMERS.c.paused_until,
        ]
        if lists:
            columns += [CUSTOMERS.c.tags, CUSTOMERS.c.interests]
        base = sa.select(*columns).where(
            CUSTOMERS.c.consent.is_(True),
            CUSTOMERS.c.status == CustomerStatus.ACTIVE.value,
            ~suppressed,
            unpaused,
        )
        if isinstance(customers, looks.Chunk):
            chunk = customers
            queries = [
                base.join(STATS, STATS.c.customer_id == CUSTOMERS.c.id).where(
                    looks.in_chunk(chunk, CUSTOMERS.c.id)
                )
            ]
        else:
            ids = sorted(set(customers))
            queries = [
                base.where(CUSTOMERS.c.id.in_(ids[start : start + 10_000]))
                for start in range(0, len(ids), 10_000)
            ]
        found: dict[int, dict[str, Any]] = {}
        with self._tx() as conn:
            for query in queries:
                for row in conn.execute(query):
                    info = {
                        "locale": row.locale,
                        "timezone": row.timezone,
                        "company": row.company,
                        "rep": row.rep_external_id,
                        "paused_until": row.paused_until,
                    }
                    if lists:
                        info["tags"], info["interests"] = row.tags, row.interests
                    found[row.id] = info
        return found

    def rep_name(self, rep_external_id: str | None) -> str | None:
        """A rep's name by their external id."""
        if not rep_external_id:
            return None
        with self._tx() as conn:
            name: str | None = conn.scalar(
                sa.select(REPS.c.name).where(REPS.c.external_id == rep_external_id)
            )
            return name

    def customers_by_ids(self, customer_ids: Iterable[int]) -> dict[int, Customer]:
        """Customers by internal id, in one query."""
        ids = sorted(set(customer_ids))
        found: dict[int, Customer] = {}
        with self._tx() as conn:
            for start in range(0, len(ids), 10_000):
                rows = conn.execute(
                    sa.select(CUSTOMERS).where(CUSTOMERS.c.id.in_(ids[start : start + 10_000]))
                )
                for row in rows:
                    found[row.id] = _customer(dict(row._mapping))
        return found

    def rep_names(self, rep_external_ids: Iterable[str]) -> dict[str, str]:
        """Reps' names by external id."""
        wanted = sorted(set(rep_external_ids))
        with self._tx() as conn:
            return {
                row[0]: row[1]
                for row in conn.execute(
                    sa.select(REPS.c.external_id, REPS.c.name).where(REPS.c.external_id.in_(wanted))
                )
            }

    def activities_of(self, customer_id: int) -> list[Activity]:
        """A customer's activities, oldest first (an index range scan)."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(ACTIVITIES)
                .where(ACTIVITIES.c.customer_id == customer_id)
                .order_by(ACTIVITIES.c.occurred_at)
            )
            return [Activity.model_validate(dict(r._mapping)) for r in rows]

    def negative_amounts(self, first: int = 5) -> NegativeAmounts:
        """Activities with ``amount < 0``: each counts as an order, as revenue and as a
        comeback, though nobody bought anything (see ``reengage doctor``)."""
        with self._tx() as conn:
            return negative_amounts(conn, first)


# Mappers are configured on first ORM use; a customer built by hand (below) needs them now.
sa.orm.configure_mappers()
_CUSTOMER_CLASS = sa.inspect(Customer).class_manager


def _customer(values: dict[str, Any]) -> Customer:
    # Built as the ORM builds a loaded row (its state first, then the values straight into
    # __dict__), not validated again: the row was validated on its way in, and validating it
    # on the way out cost ten times as much, for every mail the daemon sends (bench/send.py).
    values["status"] = CustomerStatus(values["status"])
    customer: Customer = _CUSTOMER_CLASS.new_instance()
    customer.__dict__.update(values)
    object.__setattr__(customer, "__pydantic_fields_set__", set(values))
    return customer


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
    *,
    on_insert: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> UpsertResult:
    """Upsert rows keyed by ``external_id``; a row's absent keys keep their stored value.
    ``on_insert``: values a new row gets unless it gives them (made from the row)."""
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
            if on_insert is not None:
                full.update(on_insert(row))
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
        result.changed_ids.append(old.id)
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
