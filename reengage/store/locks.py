"""``store.locks``: named leases that let one worker of many run a pass (detection, digests).

A lease is a row in ``job_locks``: who holds it and until when. One conditional UPDATE
decides who takes it, so two workers can never both win, on SQLite or PostgreSQL; the
holder renews it while its pass runs (:mod:`reengage.scheduler`), and may let go of it
when done (:meth:`JobLocks.release`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.logs import get_logger
from reengage.store.engine import upsert_insert
from reengage.store.tables import JOB_LOCKS

log = get_logger(__name__)


class JobLocks:
    """``store.locks``: take, keep or lose a named lease; one transaction a call."""

    def __init__(self, tx: Callable[[], AbstractContextManager[Connection]], dialect: str) -> None:
        self._tx = tx
        self._dialect = dialect

    def try_lock(self, name: str, holder: str, now: datetime, hold: timedelta) -> bool:
        """Take (or keep) the named lease until ``now + hold``; False if another holds it.
        The row is created on first use."""
        with self._tx() as conn:
            insert = upsert_insert(self._dialect, JOB_LOCKS)
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

    def release(self, name: str, holder: str, now: datetime) -> bool:
        """Let go of ``holder``'s lease on ``name`` (its work ended, or the worker is
        stopping): any worker takes it at once instead of after the lease. False when
        ``holder`` did not hold it."""
        with self._tx() as conn:
            let_go = conn.execute(
                JOB_LOCKS.update()
                .where(JOB_LOCKS.c.name == name)
                .where(JOB_LOCKS.c.holder == holder, JOB_LOCKS.c.locked_until > now)
                .values(locked_until=now)
            )
            return (let_go.rowcount or 0) == 1

    def held_until(self, name: str) -> datetime | None:
        """When the named lease runs out (a past moment: nobody holds it), or None if it was
        never taken. A holder renews it while it works, so a lease long past means its
        holder stopped working."""
        with self._tx() as conn:
            until: datetime | None = conn.scalar(
                sa.select(JOB_LOCKS.c.locked_until).where(JOB_LOCKS.c.name == name)
            )
        return until

    @contextlib.contextmanager
    def keeping(
        self, name: str, holder: str, clock: Callable[[], datetime], hold: timedelta
    ) -> Iterator[None]:
        """Renew ``holder``'s lease on ``name`` (every third of ``hold``) while the block
        runs, so a long pass (a million customers, a slow plan) never loses it midway."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(hold.total_seconds() / 3):
                try:
                    self.try_lock(name, holder, clock(), hold)
                except Exception:  # the pass itself will meet the same trouble and say so
                    log.warning("lock_renewal_failed", lock=name)

        keeper = threading.Thread(target=renew, name=f"keep-{name}", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            done.set()
            keeper.join()
