"""One rep's call-list inputs in SQL, and every rep's at once for the morning pass.

A rep's list reads only what concerns that rep's customers who may be called
(``status = 'active'``): their open call tasks, their people's replies still waiting, their
last call outcomes and who of them is paused (their stats: :mod:`.rep_stats`). Each query
starts from the ``rep_external_id`` index of ``customers`` and reaches the other tables
through their customer indexes (migration 0009), so a rep's list costs that rep's rows,
never the whole base's — and no query carries a list of customer ids.

The morning pass lists every rep: :func:`reps_signals` reads the calls, replies, last
calls and pauses of all of them in one query each (those tables hold a few rows per
customer at most, so one pass over them beats a hundred probes of each rep's customers),
and only the stats rows are read rep by rep (:func:`.rep_stats.reps_valued`), so memory
holds one rep's customers at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.models import CallTaskStatus, CustomerStatus
from reengage.store.calls import (
    CALL_COLUMNS,
    PAST_CALL_COLUMNS,
    REPLY_COLUMNS,
    OpenCall,
    PastCall,
    WaitingReply,
)
from reengage.store.tables import CALLS, CUSTOMERS, OUTCOMES, REPLIES


@dataclass(frozen=True)
class RepSignals:
    """What puts one rep's customers on the list or keeps them off, besides their stats."""

    calls: list[OpenCall]  # every open call of the rep's callable customers, earliest due first
    replies: list[WaitingReply]  # people's replies since the cut-off still waiting, oldest first
    last_calls: dict[int, PastCall]  # each of the rep's callable customers' latest outcome
    paused: set[int]  # the rep's callable customers paused past ``now``


def _mine(rep_external_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        CUSTOMERS.c.rep_external_id == rep_external_id,
        CUSTOMERS.c.status == CustomerStatus.ACTIVE.value,
    )


def callable_of(reps: list[str]) -> sa.ColumnElement[bool]:
    return sa.and_(
        CUSTOMERS.c.rep_external_id.in_(reps),
        CUSTOMERS.c.status == CustomerStatus.ACTIVE.value,
    )


def of_rep(conn: Connection, column: sa.ColumnElement[int], rep: str) -> sa.ColumnElement[bool]:
    """``column`` holds one of the rep's callable customers, found customer by customer.

    On PostgreSQL as ``= ANY(ARRAY(subquery))``: the rep's ids are gathered once and each
    probes the table's customer index. A plain ``IN (subquery)`` lets the planner hash the
    rep's customers against every open call (or reply, or outcome) of the base, a scan of
    the whole table for each rep's list. SQLite probes by customer either way."""
    mine = sa.select(CUSTOMERS.c.id).where(_mine(rep))
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.func.array(mine.scalar_subquery()))
    return column.in_(mine)


def rep_signals(
    conn: Connection, rep_external_id: str, now: datetime, replies_since: datetime
) -> RepSignals:
    """The inputs of ``rep_external_id``'s list at ``now``, besides their stats."""
    return RepSignals(
        calls=rep_open_calls(conn, rep_external_id),
        replies=rep_waiting_replies(conn, rep_external_id, replies_since),
        last_calls=rep_last_calls(conn, rep_external_id),
        paused=rep_paused(conn, rep_external_id, now),
    )


def _waiting(since: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        REPLIES.c.status == "new",
        REPLIES.c.automatic.is_(False),
        REPLIES.c.received_at >= since,
    )


def _latest_call() -> sa.ColumnElement[bool]:
    # The newest row of the latest moment when two share it, as calls.last_calls has it.
    later = OUTCOMES.alias("later")
    newest = sa.select(sa.func.max(later.c.called_at)).where(
        later.c.customer_id == OUTCOMES.c.customer_id
    )
    return OUTCOMES.c.called_at == newest.scalar_subquery()


def rep_open_calls(conn: Connection, rep_external_id: str) -> list[OpenCall]:
    """Open calls of the rep's callable customers, earliest due first.

    Sorted here, not in SQL: an ``ORDER BY due_at`` lets SQLite prefer walking every open
    call in the ``(status, due_at)`` index over probing the rep's customers' calls (found
    at 1,000,000 customers: each rep's list read all 90,000 open calls)."""
    query = sa.select(*CALL_COLUMNS).where(
        of_rep(conn, CALLS.c.customer_id, rep_external_id),
        CALLS.c.status == CallTaskStatus.OPEN.value,
    )
    found = [OpenCall(*row) for row in conn.execute(query)]
    return sorted(found, key=lambda c: (c.due_at, c.id))


def rep_waiting_replies(
    conn: Connection, rep_external_id: str, since: datetime
) -> list[WaitingReply]:
    """People's replies (not auto-replies) since ``since`` still waiting, oldest first."""
    query = (
        sa.select(*REPLY_COLUMNS)
        .where(of_rep(conn, REPLIES.c.customer_id, rep_external_id), _waiting(since))
        .order_by(REPLIES.c.received_at, REPLIES.c.id)
    )
    return [WaitingReply(*row) for row in conn.execute(query)]


def rep_last_calls(conn: Connection, rep_external_id: str) -> dict[int, PastCall]:
    """Each of the rep's callable customers' most recent call outcome (the newest row of the
    latest moment when two share it, as :func:`reengage.store.calls.last_calls` does)."""
    query = (
        sa.select(*PAST_CALL_COLUMNS)
        .where(of_rep(conn, OUTCOMES.c.customer_id, rep_external_id), _latest_call())
        .order_by(OUTCOMES.c.id)
    )
    found: dict[int, PastCall] = {}
    for row in conn.execute(query):
        found[row.customer_id] = PastCall(**row._mapping)
    return found


def rep_paused(conn: Connection, rep_external_id: str, now: datetime) -> set[int]:
    """The rep's callable customers paused until after ``now`` (compared in Python, as the
    list always has)."""
    query = sa.select(CUSTOMERS.c.id, CUSTOMERS.c.paused_until).where(
        _mine(rep_external_id), CUSTOMERS.c.paused_until.is_not(None)
    )
    return {cid for cid, until in conn.execute(query) if until > now}


def reps_signals(
    conn: Connection, rep_external_ids: Iterable[str], now: datetime, replies_since: datetime
) -> dict[str, RepSignals]:
    """:func:`rep_signals` of each of these reps (every one present), one query per table
    for all of them: the same rows in the same order as rep by rep."""
    chosen = sorted(set(rep_external_ids))
    found = {rep: RepSignals([], [], {}, set()) for rep in chosen}
    rep = CUSTOMERS.c.rep_external_id
    for start in range(0, len(chosen), _REPS_A_QUERY):
        reps = chosen[start : start + _REPS_A_QUERY]
        calls = (
            sa.select(rep, *CALL_COLUMNS)
            .join(CUSTOMERS, CUSTOMERS.c.id == CALLS.c.customer_id)
            .where(callable_of(reps), CALLS.c.status == CallTaskStatus.OPEN.value)
            .order_by(CALLS.c.due_at, CALLS.c.id)
        )
        for owner, *row in conn.execute(calls):
            found[owner].calls.append(OpenCall(*row))
        replies = (
            sa.select(rep, *REPLY_COLUMNS)
            .join(CUSTOMERS, CUSTOMERS.c.id == REPLIES.c.customer_id)
            .where(callable_of(reps), _waiting(replies_since))
            .order_by(REPLIES.c.received_at, REPLIES.c.id)
        )
        for owner, *row in conn.execute(replies):
            found[owner].replies.append(WaitingReply(*row))
        outcomes = (
            sa.select(rep.label("owner"), *PAST_CALL_COLUMNS)
            .join(CUSTOMERS, CUSTOMERS.c.id == OUTCOMES.c.customer_id)
            .where(callable_of(reps), _latest_call())
            .order_by(OUTCOMES.c.id)
        )
        for outcome in conn.execute(outcomes):
            values = dict(outcome._mapping)
            owner = values.pop("owner")
            found[owner].last_calls[outcome.customer_id] = PastCall(**values)
        paused = sa.select(rep, CUSTOMERS.c.id, CUSTOMERS.c.paused_until).where(
            callable_of(reps), CUSTOMERS.c.paused_until.is_not(None)
        )
        for owner, cid, until in conn.execute(paused):
            if until > now:
                found[owner].paused.add(cid)
    return found


_REPS_A_QUERY = 5000  # reps named in one query: under every driver's bind limit
