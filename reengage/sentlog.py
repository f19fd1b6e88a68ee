"""The rows of mails under way, written as the sends go: ``sending`` just before a mail's
bytes go out, its outcome as soon as the server answers — in groups, so a pass of
thousands of mails costs tens of transactions, not thousands — and, when the database is
away, kept in the spool (``reengage.spool``) until it is back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from reengage.errors import StoreError
from reengage.spool import Spool
from reengage.store import Store
from reengage.store.sending import Sent, Started


class SentLog:
    """The rows of mails under way, written together rather than one transaction per mail.

    Just before a mail's bytes go out its row is marked ``sending``; as soon as the server
    accepts it, it is recorded ``sent`` and its enrollment moves on. Everything asked for in
    the same moment — sends starting together as connections free up, and the mails just
    accepted on the connections that freed up — shares one transaction, committed before
    any of the new sends goes out. So a process that dies leaves ``sending`` (then
    ``unknown``) only the mails really on the wire, never sent twice, and a pass of
    thousands of mails costs about one transaction per round of connections.
    """

    def __init__(
        self,
        store: Store,
        lease: timedelta,
        stopping: Callable[[], bool] = lambda: False,
        spool: Spool | None = None,
    ) -> None:
        self.store, self.lease, self.stopping, self.spool = store, lease, stopping, spool
        self.pending: list[Sent] = []
        self._marks: list[tuple[Started, asyncio.Future[bool]]] = []
        self._scheduled = False
        self._error: StoreError | None = None  # a write that failed: raised by flush()

    def put_back(self, started: Started, now: datetime) -> None:
        """This send will not be made now: its row (if nothing went out) is due again."""
        self.store.put_back([started], now)

    async def mark_sending(self, started: Started, now: datetime) -> bool:
        """Mark the row ``sending`` (committed) before its bytes go out; False if it is no
        longer this worker's to send."""
        decided: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._marks.append((started, decided))
        self._soon(now)
        return await decided

    def add(self, sent: Sent) -> None:
        """An accepted message: recorded with what else is written in this moment."""
        self.pending.append(sent)
        self._soon(sent.now)

    def _soon(self, now: datetime) -> None:
        # Once every task that runs in this turn of the loop has asked, in one transaction.
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._write, now)

    def _write(self, now: datetime) -> None:
        self._scheduled = False
        group, self._marks = self._marks, []
        accepted, self.pending = self.pending, []
        if not group and not accepted:
            return  # written already (by flush)
        try:
            marked = self.store.mark_and_record([s for s, _ in group], accepted, now, self.lease)
        except Exception as exc:  # never left unanswered: a waiting send would wait forever
            if not isinstance(exc, StoreError):
                exc = StoreError(f"cannot record the sends under way: {exc}")
            self._keep(accepted, exc)
            for _, decided in group:  # each waiting send raises it: none of them goes out
                if not decided.done():
                    decided.set_exception(exc)
            return
        abandoned = []
        for (started, decided), ok in zip(group, marked, strict=True):
            if not decided.done():
                decided.set_result(ok)
            elif ok:  # its send was cancelled while waiting: none of its bytes went out
                abandoned.append(started)
        if abandoned:
            # If this fails they stay sending, then unknown: a person settles them.
            with contextlib.suppress(StoreError):
                self.store.unmark_sending(abandoned, now)

    def _keep(self, accepted: list[Sent], error: StoreError) -> None:
        # The database refused: delivered mail goes to the spool (on disk), to be written
        # when it is back; without one (or if the disk refuses too) it waits here.
        self._error = error
        if not accepted:
            return
        if self.spool is not None:
            try:
                self.spool.keep(accepted)
                return
            except StoreError as exc:
                self._error = exc
        self.pending[:0] = accepted

    def record(self, write: Callable[[], None], late: dict[str, Any]) -> None:
        """Record a send that was not accepted (``write``); if the database refuses, keep
        ``late`` (:func:`reengage.spool.outcome_line`) in the spool to be written when it is
        back, then raise."""
        try:
            write()
        except StoreError:
            if self.spool is None:
                raise
            self.spool.keep_lines([late])
            raise

    def flush(self) -> None:
        """Write every accepted message not written yet; if the database refuses (now, or
        when one was written in the background), keep them in the spool, then raise."""
        if self.pending:
            accepted, self.pending = self.pending, []
            try:
                self.store.finish_sent_many(accepted)
            except StoreError as exc:
                self._keep(accepted, exc)
        error, self._error = self._error, None
        if error is not None:
            raise error
