"""Detection passes that several workers share, chunk by chunk (``detection_passes``,
``detection_chunks``).

One pass runs at a time. It is cut into chunks as it goes: a worker takes the next one by
moving the pass's cursor past it (a conditional UPDATE: two workers never get the same
range) and holds it under a lease. Whatever a chunk decides — its enrollments, its looks —
is committed with the chunk's own row, and only while the worker still holds it, so a
worker that stalled past its lease and lost the chunk to another writes nothing. A dead
worker's chunk is taken again once its lease runs out; the pass is finished, and
``detection_state`` written, by whoever sees every chunk done and no customer left.
Every chunk decides as of the pass's moment, whichever worker takes it and whenever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.horizon import HorizonChoice
from reengage.store import looks
from reengage.store.engine import upsert_insert
from reengage.store.tables import DETECTION_CHUNKS, DETECTION_PASSES


@dataclass(frozen=True)
class SharedPass:
    """A running detection pass: what it decides with, and as of when."""

    id: int
    now: datetime
    whole: bool
    fingerprint: str
    population: list[tuple[str, float]]
    population_at: datetime
    horizon: HorizonChoice | None = None  # the rhythm horizon kept with the population


@dataclass(frozen=True)
class Taken:
    """A chunk a worker holds: ``after < id <= last``; ``first`` is its first ``limit``
    customers, read while taking it (None when a retaken chunk has none left)."""

    after: int
    last: int
    first: looks.Chunk | None


def running(conn: Connection) -> SharedPass | None:
    """The pass that runs now, or None."""
    row = conn.execute(
        sa.select(DETECTION_PASSES).where(DETECTION_PASSES.c.running.is_(True))
    ).first()
    if row is None:
        return None
    return SharedPass(
        row.id,
        row.started_at,
        row.whole,
        row.fingerprint,
        [(str(segment), float(gap)) for segment, gap in row.population],
        row.population_at,
        looks.horizon_from_json(row.horizon),
    )


def start(conn: Connection, now: datetime, whole: bool, state: looks.PassState) -> SharedPass:
    """Start a pass as of ``now`` with what ``state`` says; if another worker started one
    meanwhile, that one (the unique index on ``running`` decides)."""
    insert = upsert_insert(conn.dialect.name, DETECTION_PASSES).values(
        running=True,
        started_at=now,
        whole=whole,
        fingerprint=state.fingerprint,
        population=[list(pair) for pair in state.population],
        population_at=state.population_at,
        horizon=looks.horizon_to_json(state.horizon),
        cursor_id=0,
        exhausted=False,
    )
    conn.execute(insert.on_conflict_do_nothing())
    started = running(conn)
    assert started is not None
    return started


def abandon(conn: Connection, pass_id: int, now: datetime) -> None:
    """Stop a pass whose campaigns, model or population are no longer current: its chunks
    decided so far stand (as if it had ended there); its state is never written."""
    conn.execute(
        DETECTION_PASSES.update()
        .where(DETECTION_PASSES.c.id == pass_id, DETECTION_PASSES.c.running.is_(True))
        .values(running=None, finished_at=now)
    )
    conn.execute(DETECTION_CHUNKS.delete().where(DETECTION_CHUNKS.c.pass_id == pass_id))


def release(conn: Connection, holder: str, now: datetime) -> int:
    """Let go of the chunks ``holder`` took and did not finish (a worker stopping): any
    worker takes them at once instead of after their lease. How many there were."""
    chunks = DETECTION_CHUNKS.c
    let_go = conn.execute(
        DETECTION_CHUNKS.update()
        .where(chunks.holder == holder, chunks.done_at.is_(None), chunks.locked_until > now)
        .values(locked_until=now)
    )
    return let_go.rowcount or 0


def take(
    conn: Connection, shared: SharedPass, holder: str, now: datetime, lease: timedelta, limit: int
) -> Taken | None:
    """The chunk this worker decides next: a dead worker's (lease run out), else the next
    ``limit`` customers after the cursor; None when nothing is left to take."""
    chunks, passes = DETECTION_CHUNKS.c, DETECTION_PASSES.c
    # Write first: the pass row stays locked until this transaction ends, so takers go one
    # at a time (and SQLite's writer lock is taken now, not upgraded to after a read).
    conn.execute(
        DETECTION_PASSES.update().where(passes.id == shared.id).values(cursor_id=passes.cursor_id)
    )
    due_at = None if shared.whole else shared.now
    lost = conn.execute(
        sa.select(chunks.after_id, chunks.last_id)
        .where(chunks.pass_id == shared.id, chunks.done_at.is_(None), chunks.locked_until <= now)
        .order_by(chunks.after_id)
        .limit(1)
    ).first()
    if lost is not None:
        retaken = conn.execute(
            DETECTION_CHUNKS.update()
            .where(
                chunks.pass_id == shared.id,
                chunks.after_id == lost.after_id,
                chunks.done_at.is_(None),
                chunks.locked_until <= now,
            )
            .values(holder=holder, locked_until=now + lease)
        )
        if (retaken.rowcount or 0) == 1:
            first = looks.next_chunk(conn, lost.after_id, limit, due_at, upto=lost.last_id)
            return Taken(lost.after_id, lost.last_id, first)
        return None  # cannot happen while the pass row is locked; nothing taken
    cursor = conn.execute(
        sa.select(passes.cursor_id).where(
            passes.id == shared.id, passes.running.is_(True), passes.exhausted.is_(False)
        )
    ).scalar()
    if cursor is None:
        return None
    first = looks.next_chunk(conn, cursor, limit, due_at)
    moved = conn.execute(
        DETECTION_PASSES.update()
        .where(passes.id == shared.id, passes.cursor_id == cursor, passes.running.is_(True))
        .values(cursor_id=first.last if first is not None else cursor, exhausted=first is None)
    )
    if (moved.rowcount or 0) != 1 or first is None:
        return None
    conn.execute(
        DETECTION_CHUNKS.insert().values(
            pass_id=shared.id,
            after_id=cursor,
            last_id=first.last,
            holder=holder,
            locked_until=now + lease,
        )
    )
    return Taken(cursor, first.last, first)


def still_held(
    conn: Connection,
    shared: SharedPass,
    after: int,
    holder: str,
    now: datetime,
    lease: timedelta,
    *,
    done: bool,
) -> bool:
    """In the transaction that writes what part of a chunk decided, first: True if this
    worker still holds the chunk of a pass still running (its lease renewed, or the chunk
    marked done). False: write nothing, another worker has it or the pass was stopped."""
    chunks = DETECTION_CHUNKS.c
    values: dict[str, object] = {"locked_until": now + lease}
    if done:
        values["done_at"] = now
    kept = conn.execute(
        DETECTION_CHUNKS.update()
        .where(
            chunks.pass_id == shared.id,
            chunks.after_id == after,
            chunks.holder == holder,
            chunks.done_at.is_(None),
        )
        .values(**values)
    )
    if (kept.rowcount or 0) != 1:
        return False
    # The pass row is read under a share lock: a worker stopping the pass waits for this
    # transaction, and once it has stopped it, this read sees so.
    alive = conn.execute(
        sa.select(DETECTION_PASSES.c.id)
        .where(DETECTION_PASSES.c.id == shared.id, DETECTION_PASSES.c.running.is_(True))
        .with_for_update(read=True)
    ).first()
    return alive is not None


def finish(conn: Connection, shared: SharedPass, now: datetime) -> bool:
    """Finish the pass if no customer is left and every chunk is done, writing its state;
    False if there is more to do or another worker finished it."""
    chunks = DETECTION_CHUNKS.c
    open_chunk = sa.exists().where(chunks.pass_id == shared.id, chunks.done_at.is_(None))
    finished = conn.execute(
        DETECTION_PASSES.update()
        .where(
            DETECTION_PASSES.c.id == shared.id,
            DETECTION_PASSES.c.running.is_(True),
            DETECTION_PASSES.c.exhausted.is_(True),
            ~open_chunk,
        )
        .values(running=None, finished_at=now)
    )
    if (finished.rowcount or 0) != 1:
        return False
    state = looks.PassState(
        shared.fingerprint, shared.population, shared.population_at, shared.now, shared.horizon
    )
    looks.save_state(conn, state)
    conn.execute(DETECTION_CHUNKS.delete().where(chunks.pass_id == shared.id))
    conn.execute(  # earlier passes: nothing reads them again
        DETECTION_PASSES.delete().where(
            DETECTION_PASSES.c.id < shared.id, DETECTION_PASSES.c.running.is_(None)
        )
    )
    return True
