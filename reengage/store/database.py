"""``Store``: the narrow door to the database that the use cases (ingest, jobs, …) go through."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from reengage.errors import StoreError
from reengage.store import claims, enrollments, messages, migrate
from reengage.store.call_book import CallBook
from reengage.store.customers import CustomerBook
from reengage.store.detection import DetectionReads
from reengage.store.engine import check_connection, create_engine, upsert_insert
from reengage.store.response_log import ResponseLog
from reengage.store.sending_book import SendingBook
from reengage.store.stats import StatsQueries
from reengage.store.tables import CALLS, JOB_LOCKS

# How long after a customer's last mail an activity is still credited to it, by default.
ATTRIBUTION = timedelta(days=30)


class Store:
    """All SQL goes through here. Each call is one short transaction unless pinned (dry runs)."""

    def __init__(self, engine: Engine, *, attribution_window: timedelta = ATTRIBUTION) -> None:
        self.engine = engine
        self._pinned: Connection | None = None
        # An activity this long after a customer's last mail is not credited to it.
        self.attribution_window = attribution_window
        self.responses = ResponseLog(self._tx)
        self.calls = CallBook(self._tx)
        self.stats = StatsQueries(self._tx)
        self.customers = CustomerBook(self._tx, attribution_window=attribution_window)
        self.sending = SendingBook(self._tx)
        self.detection = DetectionReads(self._tx)

    @classmethod
    def open(
        cls, url: str, *, upgrade: bool = False, attribution_window: timedelta = ATTRIBUTION
    ) -> Store:
        """Connect to ``url``; with ``upgrade`` bring the schema to head, else require it."""
        store = cls(create_engine(url), attribution_window=attribution_window)
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

    # -- the sending protocol: see store.sending (sending_book.py) ---------------------------

    def mark_and_record(
        self,
        started: Sequence[claims.Started],
        sent: Sequence[messages.Sent],
        now: datetime,
        lease: timedelta,
    ) -> list[bool]:
        """In one transaction: record accepted messages (their enrollments move on), and mark
        ``started`` sending (see :meth:`mark_sending_many`)."""
        with self._tx() as conn:
            messages.finish_sent_many(conn, sent)
            return messages.mark_sending_many(conn, started, now, lease) if started else []

    def try_lock(self, name: str, holder: str, now: datetime, hold: timedelta) -> bool:
        """Take (or keep) the named lease until ``now + hold``; False if another holds it.

        One conditional UPDATE decides, so two workers can never both win, on SQLite or
        PostgreSQL; the row is created on first use.
        """
        with self._tx() as conn:
            insert = upsert_insert(self.dialect, JOB_LOCKS)
            conn.execute(
                insert.values(name=name, holder="", locked_until=now - hold).on_conflict_do_nothing(
                    index_elements=["name"]
                )
            )
            taken = conn.execute(
                JOB_LOCKS.update()
                .where(JOB_LOCKS.c.name == name)
                .where(sa.or_(JOB_LOCKS.c.locked_until <= now, JOB_LOCKS.c.holder == holder))
                .values(holder=holder, locked_until=now + hold)
            )
            return (taken.rowcount or 0) == 1

    def open_call_tasks(self) -> list[dict[str, Any]]:
        """Calls waiting on reps (campaign call steps)."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(CALLS).where(CALLS.c.status == "open").order_by(CALLS.c.due_at)
            )
            return [dict(r._mapping) for r in rows]

    def message_counts(self) -> dict[str, int]:
        """Messages by status."""
        with self._tx() as conn:
            return messages.message_counts(conn)

    def queue_depth(self, now: datetime) -> int:
        """Enrollments with a step due now."""
        with self._tx() as conn:
            return enrollments.queue_depth(conn, now)
