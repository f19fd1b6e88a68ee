"""The rows of mails under way, written as the sends go: ``sending`` just before a mail's
bytes go out, its outcome as soon as the server answers — in groups, so a pass of
thousands of mails costs tens of transactions, not thousands — and, when the database is
away, kept in the spool (``reengage.spool``) until it is back.

Every database (and spool) call of a pass goes through :meth:`SentLog.call`: in a thread,
so the event loop keeps sending mail and serving the web app and inbound SMTP, and one at a
time, as when they ran on the loop itself."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from reengage.errors import StoreError
from reengage.spool import Spool, unsent_line
from reengage.store import Store
from reengage.store.sending import Sent, Started

P = ParamSpec("P")
T = TypeVar("T")


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
        self._asked: datetime | None = None  # the first ask not taken by a write yet
        self._writer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one database call of the pass at a time
        self._error: StoreError | None = None  # a write that failed: raised by flush()
        # The sends of this pass not finished yet: message id → [the lease its queued row
        # holds (None once marked sending), its enrollment], kept claimed by renew().
        self._claims: dict[int, list[Any]] = {}
        self._on_the_wire: set[int] = set()  # sends whose mail started to go (DATA)

    def hold(self, started: Started, enrollment_id: int) -> None:
        """A send of this pass: its row and enrollment stay claimed (:meth:`renew`)."""
        if started.message_id is not None:
            self._claims[started.message_id] = [started.lease_until, enrollment_id]

    def done(self, started: Started) -> None:
        """The send finished (or was given up): its claims are no longer renewed."""
        if started.message_id is not None:
            self._claims.pop(started.message_id, None)
            self._on_the_wire.discard(started.message_id)

    def going_out(self, started: Started) -> None:
        """The mail itself is going to the server now: from here the server may keep it."""
        if started.message_id is not None:
            self._on_the_wire.add(started.message_id)

    async def call(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``work(*args, **kwargs)`` in a thread, once the pass's previous call is done.

        Cancelled meanwhile, it still waits for the call to finish: a write is never left
        half seen, and the next call never overlaps it."""
        async with self._lock:
            return await _in_thread(work, *args, **kwargs)

    async def let_go(self, started: Started, now: datetime) -> None:
        """Give this send up (the worker is stopping and its grace is over): a mail that
        started to go is ``unknown`` (the server may have kept it); one that never did —
        claimed, waiting for its turn, or still at MAIL FROM or RCPT TO — is due again."""
        if started.message_id in self._on_the_wire:
            await self.call(self.store.sending.let_go, [started], now)
        else:
            await self.call(self.store.sending.unmark_sending, [started], now)

    async def renew(self, until: datetime) -> None:
        """Keep what this pass claimed and has not finished until ``until``: a worker that
        dies stops renewing, and its mails not begun are due again once that passes."""
        if not self._claims:
            return
        queued: dict[datetime, list[int]] = {}
        for message_id, (held, _) in self._claims.items():
            if held is not None:
                queued.setdefault(held, []).append(message_id)
        enrollments = sorted({enrollment for _, enrollment in self._claims.values()})
        renewed = await self.call(self.store.sending.renew_claims, queued, enrollments, until)
        for message_id in renewed:
            claim = self._claims.get(message_id)
            if claim is not None and claim[0] is not None:
                claim[0] = until

    def _current(self, started: Started) -> Started:
        # The row's lease as last renewed: what marking it compares against.
        claim = self._claims.get(started.message_id or 0)
        if claim is None or claim[0] is None or claim[0] == started.lease_until:
            return started
        return replace(started, lease_until=claim[0])

    async def put_back(self, started: Started, now: datetime) -> None:
        """This send will not be made now: its row (if nothing went out) is due again."""
        await self.call(self.store.sending.put_back, [started], now)

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
        # Once every task that runs in this turn of the loop has asked, in one transaction;
        # what is asked while that one is being written waits for the next.
        if self._asked is None:
            self._asked = now
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_all())

    async def _write_all(self) -> None:
        try:
            while self._asked is not None:
                async with self._lock:
                    now, self._asked = self._asked, None
                    await self._write(now)
        finally:
            self._writer = None

    async def _write(self, now: datetime) -> None:
        group, self._marks = self._marks, []
        accepted, self.pending = self.pending, []
        if not group and not accepted:
            return  # written already (by flush)
        current = [self._current(s) for s, _ in group]
        try:
            # No mark's send goes out before this commit is back: its future waits for it.
            marked = await _in_thread(
                self.store.sending.mark_and_record, current, accepted, now, self.lease
            )
        except Exception as exc:  # never left unanswered: a waiting send would wait forever
            if not isinstance(exc, StoreError):
                exc = StoreError(f"cannot record the sends under way: {exc}")
            await self._keep(accepted, exc)
            await self._keep_unsent([s for s, _ in group], now)
            for _, decided in group:  # each waiting send raises it: none of them goes out
                if not decided.done():
                    decided.set_exception(exc)
            return
        abandoned = []
        for (started, decided), ok in zip(group, marked, strict=True):
            if ok and started.message_id in self._claims:
                self._claims[started.message_id][0] = None  # sending: its lease is the send's
            if not decided.done():
                decided.set_result(ok)
            elif ok:  # its send was cancelled while waiting: none of its bytes went out
                abandoned.append(started)
        if abandoned:
            # If this fails they stay sending, then unknown: a person settles them.
            with contextlib.suppress(StoreError):
                await _in_thread(self.store.sending.unmark_sending, abandoned, now)

    async def _keep(self, accepted: list[Sent], error: StoreError) -> None:
        # The database refused: delivered mail goes to the spool (on disk), to be written
        # when it is back; without one (or if the disk refuses too) it waits here.
        self._error = error
        if not accepted:
            return
        if self.spool is not None:
            try:
                await _in_thread(self.spool.keep, accepted)
                return
            except StoreError as exc:
                self._error = exc
        self.pending[:0] = accepted

    async def _keep_unsent(self, group: list[Started], now: datetime) -> None:
        # None of these goes out, but a mark whose reply was lost may have been committed:
        # kept, so the row is put back when the database is back instead of turning unknown.
        lines = [
            unsent_line(s.message_id, self._claims[s.message_id][1], now + self.lease, now)
            for s in group
            if s.message_id is not None and s.message_id in self._claims
        ]
        if lines and self.spool is not None:
            with contextlib.suppress(StoreError):  # then they show unknown: a person settles
                await _in_thread(self.spool.keep_lines, lines)

    async def record(self, write: Callable[[], None], late: dict[str, Any]) -> None:
        """Record a send that was not accepted (``write``); if the database refuses, keep
        ``late`` (:func:`reengage.spool.outcome_line`) in the spool to be written when it is
        back, then raise."""

        def write_or_keep() -> None:
            try:
                write()
            except StoreError:
                if self.spool is None:
                    raise
                self.spool.keep_lines([late])
                raise

        await self.call(write_or_keep)

    async def flush(self) -> None:
        """Write every accepted message not written yet; if the database refuses (now, or
        when one was written in the background), keep them in the spool, then raise."""
        async with self._lock:  # after the write under way, if any: its error is seen here
            if self.pending:
                accepted, self.pending = self.pending, []
                try:
                    await _in_thread(self.store.sending.finish_sent_many, accepted)
                except StoreError as exc:
                    await self._keep(accepted, exc)
            error, self._error = self._error, None
        if error is not None:
            raise error


async def _in_thread(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    # Off the event loop; a call cannot be stopped midway, so a cancelled caller waits for
    # it to end: what it wrote is known before anything else touches the rows.
    return await to_the_end(asyncio.to_thread(work, *args, **kwargs))


async def to_the_end(work: Awaitable[T]) -> T:
    """Await ``work`` to its end even if the caller is cancelled meanwhile, then re-raise
    the cancellation: for steps that must be done whole once begun."""
    running = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        await asyncio.wait([running])
        raise
