"""A shared detection pass, chunk by chunk (``store.passes``): a worker that lost its chunk
writes nothing, a dead worker's chunk is taken again, and the pass ends (its state written)
only when every chunk is done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from reengage.store import Store
from reengage.store.activities import NewActivity
from reengage.store.looks import NEVER, PassState
from reengage.store.sending import NewEnrollment
from reengage.store.tables import ENROLLMENTS, STATS

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def customers(store: Store, n: int) -> list[int]:
    rows = [{"external_id": f"k{i}", "email": f"k{i}@example.com"} for i in range(n)]
    store.customers.upsert_customers(rows, START)
    ids = sorted(store.customers.customer_ids(r["external_id"] for r in rows).values())
    orders = [NewActivity(f"o{c}", c, "order", START - timedelta(days=9), 50.0, 9.0) for c in ids]
    store.customers.add_activities(orders, START)
    return ids


def written(store: Store) -> tuple[int, list[object]]:
    with store.engine.connect() as conn:
        count = conn.scalar(sa.select(sa.func.count()).select_from(ENROLLMENTS))
        looks = list(conn.scalars(sa.select(STATS.c.look_again_at).order_by(STATS.c.customer_id)))
    return int(count or 0), looks


def test_a_worker_that_lost_its_chunk_writes_nothing_and_the_pass_ends_when_all_are_done(
    store: Store,
) -> None:
    ids = customers(store, 8)
    shared = store.detection.start_pass(START, True, PassState("f", [("", 30.0)], START, START))
    assert store.detection.start_pass(START, True, PassState("g", [], START, START)) == shared
    slow = store.detection.take_chunk(shared, "slow", START, LEASE, 5)
    assert slow is not None and slow.first is not None and slow.first.ids == ids[:5]
    later = START + 2 * LEASE  # the slow worker stalled past its lease
    other = store.detection.take_chunk(shared, "other", later, LEASE, 5)
    assert other is not None and (other.after, other.last) == (slow.after, slow.last)
    new = [NewEnrollment(ids[0], "c0", False, "first", START)]
    looked = [(ids[0], slow.first.versions[ids[0]], NEVER)]
    kept = store.detection.commit_chunk(
        shared, slow, "slow", later, LEASE, done=True, new=new, looked=looked
    )
    assert not kept and written(store) == (0, [None] * 8)  # nothing of it was written
    assert store.detection.commit_chunk(
        shared, other, "other", later, LEASE, done=True, new=new, looked=looked
    )
    assert written(store) == (1, [NEVER] + [None] * 7)
    assert not store.detection.finish_pass(shared, later)  # three customers are left
    rest = store.detection.take_chunk(shared, "slow", later, LEASE, 5)
    assert rest is not None and rest.first is not None and rest.first.ids == ids[5:]
    assert store.detection.take_chunk(shared, "other", later, LEASE, 5) is None  # held
    assert not store.detection.finish_pass(shared, later)  # a chunk is not done
    assert store.detection.commit_chunk(
        shared, rest, "slow", later, LEASE, done=True, new=[], looked=[]
    )
    assert store.detection.finish_pass(shared, later)
    assert store.detection.running_pass() is None
    state = store.detection.pass_state()
    assert state is not None and (state.fingerprint, state.updated_at) == ("f", START)


def test_a_stopped_pass_takes_no_more_writes(store: Store) -> None:
    """Campaigns changed: the worker that starts the next pass stops the old one; a worker
    still deciding a chunk of it writes nothing, and its state is never saved."""
    customers(store, 3)
    shared = store.detection.start_pass(START, False, PassState("f", [], START, START))
    taken = store.detection.take_chunk(shared, "w", START, LEASE, 5)
    assert taken is not None
    store.detection.abandon_pass(shared.id, START)
    assert not store.detection.commit_chunk(
        shared, taken, "w", START, LEASE, done=True, new=[], looked=[]
    )
    assert not store.detection.finish_pass(shared, START)
    assert store.detection.pass_state() is None
    assert store.detection.start_pass(START, True, PassState("g", [], START, START)).id != shared.id
