"""The rows of mails under way, written as the sends go: ``sending`` just before a mail's
bytes go out, its outcome as soon as the server answers — in groups, so a pass of
thousands of mails costs tens of transactions, not thousands — and, when the database is
away, kept in the spool (``reengage.spool``) until it is back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from reengage.errors import StoreError
from reengage.spool import Spool
from reengage.store import Store
from reengage.store.sending import Sent, Started


class SentLog:
    """The rows of mails under way, written in groups rather than one transaction per mail.

    Just before a mail's bytes go out its row is marked ``sending``; marks asked for in the
    same moment (sends starting together as connections free up) share one transaction,
    committed before any of them is sent. Accepted messages are recorded ``sent`` in groups,
    written when full, before the next batch is claimed, and when dispatch stops for any
    reason. Until then the rows stay ``sending`` under their lease, so a process that dies
    in between leaves them ``unknown``, never sent twice (at most a batch's accepted mails).
    """

    GROUP = 50

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

    def put_back(self, started: Started, now: datetime) -> None:
        """This send will not be made now: its row (if nothing went out) is due again."""
        self.store.put_back([started], now)

    async def mark_sending(self, started: Started, now: datetime) -> bool:
        """Mark the row ``sending`` (committed) before its bytes go out; False if it is no
        longer this worker's to send."""
        loop = asyncio.get_running_loop()
        decided: asyncio.Future[bool] = loop.create_future()
        if not self._marks:
            loop.call_soon(self._write_marks, now)  # after every send starting now asked
        self._marks.append((started, decided))
        return await decided

    def _write_marks(self, now: datetime) -> None:
        group, self._marks = self._marks, []
        try:
            marked = self.store.mark_sending_many([s for s, _ in group], now, self.lease)
        except Exception as exc:  # each waiting send raises it: none of them goes out
            for _, decided in group:
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
            self.store.unmark_sending(abandoned, now)

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

    def add(self, sent: Sent) -> None:
        """Keep one accepted message; write the group when it is full."""
        self.pending.append(sent)
        if len(self.pending) >= self.GROUP:
            self.flush()

    def flush(self) -> None:
        """Write every kept message now; if the database refuses, keep them in the spool
        (on disk) to be written when it is back, then raise."""
        if self.pending:
            group, self.pending = self.pending, []
            try:
                self.store.finish_sent_many(group)
            except StoreError:
                if self.spool is None:
                    raise
                self.spool.keep(group)  # delivered mail is never forgotten
                raise
