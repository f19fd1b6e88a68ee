"""The daemon's refit lease (``refit_lapse_model``): let go of when the refit ends or a
stopping daemon abandons it, and short, so one whose worker was killed is soon seen as such
and taken by the next. Real databases, a generated history, the daemon's own refit job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from reengage.compose import Workspace
from reengage.config import load_settings
from reengage.detection_runner import REFIT_HOLD
from reengage.mailer import SmtpMailer
from reengage.refit import REFIT_LOCK
from reengage.scheduler import Service
from reengage.store import Store
from tests.integration.rhythm_world import FAST, import_history

NOW = datetime(2026, 11, 1, tzinfo=UTC)
DAY = timedelta(hours=24)


def daemon(
    store: Store, now: datetime, detection: object | None = None, every: timedelta = DAY
) -> Service:
    """A worker of the daemon at ``now``, refitting ``every`` (each has its own id)."""
    ws = Workspace.from_settings(load_settings(env_file=None))
    return Service(
        store,
        SmtpMailer("127.0.0.1", 9),
        ws,
        clock=lambda: now,
        refit_every=every,
        detection=cast(Any, detection),
    )


class StoppedMidway:
    """The detection child of a daemon stopped (SIGTERM) while it refits: the refit was
    begun, then the stop kills the child and its refit comes back with nothing."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.service: Service | None = None

    def refit(self, now: datetime) -> None:
        self.store.lapse_models.begin_refit(now, 28.0)  # what the child wrote first
        assert self.service is not None
        self.service.stop()  # SIGTERM: the daemon stops and kills its child
        return None

    def close(self) -> None:
        pass


def test_a_daemon_stopped_during_a_refit_lets_go_of_its_lease_and_the_next_start_refits(
    store: Store, tmp_path: Path
) -> None:
    import_history(store, tmp_path / "fast", FAST, customers=400, now=NOW)
    child = StoppedMidway(store)
    stopping = daemon(store, NOW, child)
    child.service = stopping
    assert stopping.refit() is None
    assert store.lapse_models.last_refit() is None  # a stop is no failure: nothing recorded
    assert store.locks.held_until(REFIT_LOCK) == NOW  # let go of, not held for its lease

    # Started again a minute later (another worker id): it refits now, not after the lease.
    restarted = daemon(store, NOW + timedelta(minutes=1))
    refit = restarted.refit()
    assert refit is not None and refit.verdict in {"kept", "rejected"}
    assert store.lapse_models.last_refit() == refit
    # A finished refit lets go of the lease too: any worker may take it at once.
    assert store.locks.try_lock(REFIT_LOCK, "another", NOW + timedelta(minutes=2), REFIT_HOLD)


def test_a_refit_lease_not_renewed_runs_out_within_minutes(store: Store, tmp_path: Path) -> None:
    """Its worker renews the lease every third of it while the refit works (the heartbeat);
    a worker killed (kill -9) renews it no more, and minutes later, not half an hour, the
    lease is over: doctor says the refit did not finish (test_score_horizon) and another
    worker may take the lease (the lease is judged by the database's row alone)."""

    class KilledMidway:
        held: datetime | None = None

        def refit(self, now: datetime) -> None:
            self.held = store.locks.held_until(REFIT_LOCK)  # what a kill -9 now would leave
            return None

        def close(self) -> None:
            pass

    import_history(store, tmp_path / "fast", FAST, customers=400, now=NOW)
    child = KilledMidway()
    daemon(store, NOW, child).refit()
    assert child.held is not None
    assert child.held <= NOW + timedelta(minutes=3)


def test_a_stop_during_a_refit_ends_it_quietly_not_as_a_scheduler_error(
    tmp_path: Path, monkeypatch: Any, caplog: Any
) -> None:
    """SIGTERM while the refit job works: the daemon stops cleanly, and its log has no
    "Error running job refit" with a CancelledError (the job's wrapper was cancelled at
    shutdown, which APScheduler logs as an error)."""
    import asyncio
    import logging
    import threading
    import time

    from reengage import jobs
    from reengage.enroll import EnrollReport

    monkeypatch.setattr(jobs, "REFIT_CHECK_S", 0.2)
    begun = threading.Event()

    class SlowChild:
        pid = None

        def start(self) -> None:
            pass

        def detect(self, *args: Any, **kwargs: Any) -> EnrollReport:
            return EnrollReport(skipped="not this test's business")

        def refit(self, now: datetime) -> None:
            begun.set()
            time.sleep(1.0)  # the child at work when the stop comes
            return None

        def close(self) -> None:
            pass

    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}", upgrade=True)
    ws = Workspace.from_settings(load_settings(env_file=None, campaigns_dir=tmp_path))
    service = Service(
        store,
        SmtpMailer("127.0.0.1", 9),
        ws,
        clock=lambda: NOW,
        refit_every=DAY,
        detection=cast(Any, SlowChild()),
    )

    async def run_then_stop() -> None:
        running = asyncio.ensure_future(service.run_forever())
        for _ in range(200):
            if begun.is_set() or running.done():
                break
            await asyncio.sleep(0.05)
        assert begun.is_set(), running.exception() if running.done() else "no refit began"
        service.stop()
        await running

    with caplog.at_level(logging.INFO):
        asyncio.run(run_then_stop())
    store.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
