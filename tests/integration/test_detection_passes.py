"""A shared detection pass, chunk by chunk (``store.passes``): a worker that lost its chunk
writes nothing, a dead worker's chunk is taken again, and the pass ends (its state written)
only when every chunk is done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reengage.store import Store
from reengage.store.activities import NewActivity
from reengage.store.looks import NEVER, PassState
from reengage.store.sending import NewEnrollment
from reengage.store.tables import ENROLLMENTS, STATS

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
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


def test_a_dead_workers_chunk_is_taken_again_soon_after_its_lease_not_at_the_next_tick(
    store: Store, tmp_path: Any
) -> None:
    """A worker dies holding the only chunk of a pass. Another worker's join job (every
    JOIN_EVERY_S) leaves it alone while the lease runs, takes it when the lease has ended
    and finishes the pass with the enrollments a single pass would have made; with no pass
    under way it does nothing."""
    from reengage import enroll
    from reengage.compose import Workspace
    from reengage.config import load_settings
    from reengage.mailer import SmtpMailer
    from reengage.scheduler import JOIN_EVERY_S, Service

    ids = customers(store, 12)
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "back.yaml").write_text(
        "id: back\nname: Back\nholdout_percent: 20\n"
        "audience:\n  lapsed: {factor: 1.0, min_days_silent: 5}\n"
        'from: "Acme <hello@acme.example>"\n'
        "steps:\n  - {key: first, after: 0d, subject: Hi, template: tips/tip-1.html.j2}\n"
    )
    settings = load_settings(
        env_file=None, campaigns_dir=tmp_path / "campaigns", templates_dir=ROOT / "templates"
    )
    clock = {"now": START + timedelta(days=60)}  # everyone has been silent for 69 days
    service = Service(
        store,
        SmtpMailer("127.0.0.1", 9),
        Workspace.from_settings(settings),
        clock=lambda: clock["now"],
    )
    service.reload()
    campaigns = list(service.library.campaigns.values())
    idle = service.join_detection()
    assert idle is not None and idle.skipped and idle.looked_at == 0  # no pass under way

    class Killed(Exception):
        pass

    def dies(*_: Any, **__: Any) -> dict[int, Any]:
        raise Killed

    dead = Store.open(str(store.engine.url.render_as_string(hide_password=False)))
    dead.customers.contactable = dies  # type: ignore[method-assign]
    with pytest.raises(Killed):  # it started the pass and took its only chunk
        enroll.detect_and_enroll(dead, campaigns, clock["now"], worker="dead")
    clock["now"] += timedelta(seconds=JOIN_EVERY_S)  # the lease (2 minutes) still runs
    held = service.join_detection()
    assert held is not None and held.looked_at == 0
    assert store.detection.running_pass() is not None
    clock["now"] += enroll.CHUNK_LEASE  # ended: the next join, 30 s on, takes the chunk
    taken = service.join_detection()
    assert taken is not None and taken.looked_at == len(ids)
    assert store.detection.running_pass() is None  # the pass is finished
    reference = Store.open(f"sqlite:///{tmp_path / 'one.db'}", upgrade=True)
    customers(reference, 12)
    enroll.detect_and_enroll(
        reference,
        campaigns,
        clock["now"] - enroll.CHUNK_LEASE - timedelta(seconds=JOIN_EVERY_S),
        whole=True,
    )
    assert written(store) == written(reference)  # the same enrollments and next looks
    assert written(store)[0] > 0
    dead.close()
    reference.close()


def test_a_worker_that_stops_cleanly_lets_its_chunks_go_at_once(store: Store) -> None:
    """A stopped daemon is not a crash: the chunk it was deciding is taken by another worker
    straight away, not after its lease; a chunk it finished stays finished."""
    ids = customers(store, 8)
    shared = store.detection.start_pass(START, True, PassState("f", [("", 30.0)], START, START))
    done = store.detection.take_chunk(shared, "stopping", START, LEASE, 4)
    assert done is not None
    assert store.detection.commit_chunk(
        shared, done, "stopping", START, LEASE, done=True, new=[], looked=[]
    )
    held = store.detection.take_chunk(shared, "stopping", START, LEASE, 4)
    assert held is not None and held.first is not None and held.first.ids == ids[4:]
    soon = START + LEASE / 10
    assert store.detection.take_chunk(shared, "other", soon, LEASE, 4) is None  # leased
    assert store.detection.release_chunks("stopping", soon) == 1
    taken = store.detection.take_chunk(shared, "other", soon, LEASE, 4)
    assert taken is not None and (taken.after, taken.last) == (held.after, held.last)
    assert store.detection.release_chunks("stopping", soon) == 0  # nothing left to let go
