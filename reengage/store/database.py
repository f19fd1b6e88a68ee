"""``Store``: the narrow door to the database that the use cases (ingest, jobs, …) go through."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from reengage.errors import StoreError
from reengage.store import migrate
from reengage.store.call_book import CallBook
from reengage.store.customers import CustomerBook
from reengage.store.detection import DetectionReads
from reengage.store.engine import check_connection, create_engine
from reengage.store.lapse_models import LapseModelBook
from reengage.store.locks import JobLocks
from reengage.store.response_log import ResponseLog
from reengage.store.sending_book import SendingBook
from reengage.store.stats import StatsQueries
from reengage.store.uplift import UpliftRules
from reengage.store.webhook_tokens import WebhookTokens

# How long after a customer's last mail an activity is still credited to it, by default.
ATTRIBUTION = timedelta(days=30)


class Store:
    """All SQL goes through here. Each call is one short transaction unless pinned (dry runs)."""

    def __init__(self, engine: Engine, *, attribution_window: timedelta = ATTRIBUTION) -> None:
        self.engine = engine
        # A connection pinned by ``rolled_back`` or ``atomic``: per thread, because the
        # daemon's jobs share one store from several threads.
        self._local = threading.local()
        # An activity this long after a customer's last mail is not credited to it.
        self.attribution_window = attribution_window
        self.responses = ResponseLog(self._tx)
        self.calls = CallBook(self._tx)
        self.stats = StatsQueries(self._tx)
        self.customers = CustomerBook(self._tx, attribution_window=attribution_window)
        self.sending = SendingBook(self._tx)
        self.detection = DetectionReads(self._tx)
        self.locks = JobLocks(self._tx, engine.dialect.name)
        self.lapse_models = LapseModelBook(self._tx)
        self.uplift_rules = UpliftRules(self._tx, engine.dialect.name)
        self.webhook_tokens = WebhookTokens(self._tx)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        upgrade: bool = False,
        attribution_window: timedelta = ATTRIBUTION,
        connect_timeout: int | None = None,
    ) -> Store:
        """Connect to ``url``; with ``upgrade`` bring the schema to head, else require it.
        A server that does not answer within ``connect_timeout`` seconds is an error."""
        engine = create_engine(url, connect_timeout=connect_timeout)
        store = cls(engine, attribution_window=attribution_window)
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

    def check(self) -> None:
        """Raise :class:`StoreError` unless the database answers a trivial query now."""
        check_connection(self.engine)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @property
    def _pinned(self) -> Connection | None:
        pinned: Connection | None = getattr(self._local, "conn", None)
        return pinned

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
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None
                trans.rollback()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Run every call this thread makes inside in one transaction, committed at the end
        or not at all: a mail recorded together with the receipt that says so."""
        if self._pinned is not None:  # inside one already: it decides
            yield
            return
        try:
            with self.engine.begin() as conn:
                self._local.conn = conn
                try:
                    yield
                finally:
                    self._local.conn = None
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {exc}") from exc
