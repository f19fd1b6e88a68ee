"""Each refit tells its own story: one whose worker was killed is closed as not finished
when the next refit begins, and a later refit (finished, or forgotten by a graceful stop)
never speaks for it in ``doctor``. Real databases, a generated history, the daemon's own
refit job, ``doctor`` at pinned moments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from reengage import refit
from reengage.detection_runner import REFIT_HOLD
from reengage.refit import REFIT_LOCK, refit_model
from reengage.scheduler import Service
from reengage.store import Store
from reengage.store.tables import LAPSE_REFITS
from tests.integration import inprocess
from tests.integration.rhythm_world import FAST, import_history
from tests.integration.test_refit_lease import daemon as lease_daemon

pytestmark = pytest.mark.clock  # doctor reads the (pinned) process clock
A = datetime(2026, 12, 1, 10, 10, tzinfo=UTC)  # refit A begins; its daemon is killed
B = datetime(2026, 12, 1, 11, 25, tzinfo=UTC)  # refit B begins after the restart
HOUR = timedelta(hours=1)  # REENGAGE_MODEL_REFIT_EVERY_HOURS=1
LOST = (
    "did not finish: its worker stopped before a verdict (killed, or out of memory; found "
    "so 2026-12-01 11:25 UTC, as the next refit began); the model in force stayed"
)


class Killed(BaseException):
    """kill -9: nothing after this line of the daemon runs, not even its `finally`s."""


def kill_during_refit(store: Store, tmp_path: Path) -> None:
    """A daemon takes the refit's lease at A as it does, begins the refit, and is killed:
    the refit stays recorded as begun, and nothing renews or lets go of the lease."""
    import_history(store, tmp_path / "fast", FAST, customers=400, now=A)
    assert store.locks.try_lock(REFIT_LOCK, "killed-worker", A, REFIT_HOLD)
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(refit, "fit_model", lambda *_: (_ for _ in ()).throw(Killed()))
        with pytest.raises(Killed):
            refit_model(store, A)


def daemon(store: Store, now: datetime, detection: object | None = None) -> Service:
    """The restarted daemon at ``now``, refitting once an hour."""
    return lease_daemon(store, now, detection, every=HOUR)


class StoppedMidway:
    """The detection child of a daemon stopped gracefully (SIGTERM) during its refit: the
    child began the refit (when ``begins``), then the stop kills it and its refit comes back
    with nothing."""

    def __init__(self, store: Store, *, begins: bool = True) -> None:
        self.store, self.begins = store, begins
        self.service: Service | None = None

    def refit(self, now: datetime) -> None:
        if self.begins:
            self.store.lapse_models.begin_refit(now, 28.0)  # what the child writes first
        assert self.service is not None
        self.service.stop()  # SIGTERM: the daemon stops and kills its child
        return None

    def close(self) -> None:
        pass


def restart_and_stop(store: Store, *, begins: bool = True) -> None:
    child = StoppedMidway(store, begins=begins)
    service = daemon(store, B, child)
    child.service = service
    assert service.refit() is None  # stopped: no verdict
    assert service.stopping


def doctor(tmp_path: Path, url: str, now: datetime) -> inprocess.Result:
    env = {
        "REENGAGE_DATABASE_URL": url,
        "REENGAGE_NOW": now.isoformat(),
        "REENGAGE_SECRET_KEY": "d" * 40,
        "REENGAGE_SPOOL_DIR": str(tmp_path / "spool"),
        "REENGAGE_MODEL_REFIT_EVERY_HOURS": "1",
        "COLUMNS": "200",
    }
    return inprocess.cli("doctor", cwd=tmp_path, env=env)


def history(store: Store) -> list[tuple[datetime, str, str]]:
    """Every refit recorded, oldest first: when it began, its verdict and why."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(LAPSE_REFITS.c.at, LAPSE_REFITS.c.verdict, LAPSE_REFITS.c.reason).order_by(
                LAPSE_REFITS.c.id
            )
        ).all()
    return [(row.at, row.verdict, row.reason) for row in rows]


def test_a_graceful_stop_after_a_killed_refit_does_not_make_doctor_blend_the_two(
    store: Store, tmp_path: Path, database_url: str
) -> None:
    """The tester's sequence: kill -9 during refit A, restart, SIGTERM during refit B. Refit
    B is forgotten (a stop is no failure); refit A is told as itself, closed when B began,
    and no lease moment of B's is pinned on it."""
    kill_during_refit(store, tmp_path)
    running = doctor(tmp_path, database_url, A + timedelta(minutes=1)).stdout
    assert "ok   last refit: under way since 2026-12-01 10:10 UTC" in running, running

    with capture_logs() as logs:
        restart_and_stop(store)
    assert store.locks.held_until(REFIT_LOCK) == B  # let go of by the stop

    after = doctor(tmp_path, database_url, B + timedelta(minutes=1)).stdout
    assert "FAIL last refit" not in after, after
    assert "lease ran out 2026-12-01 11:25" not in after
    assert f"ok   last refit: 2026-12-01 10:10 UTC, {LOST}" in after, after
    # The stop forgot B, so the daemon refits on its next start.
    assert "ok   next refit: due now" in after, after
    assert history(store) == [(A, "skipped", LOST)]  # B forgotten, A closed as itself
    assert [(e["verdict"], e["begun"]) for e in logs if e["event"] == "model_refit"] == [
        ("skipped", A.isoformat())
    ]


def test_a_killed_refit_then_a_finished_one_each_keep_their_own_verdict(
    store: Store, tmp_path: Path, database_url: str
) -> None:
    kill_during_refit(store, tmp_path)
    done = daemon(store, B).refit()  # restarted; refit B comes to a verdict
    assert done is not None and done.verdict in {"kept", "rejected"}
    shown = doctor(tmp_path, database_url, B + timedelta(minutes=1)).stdout
    assert f"ok   last refit: 2026-12-01 11:25 UTC, {done.reason}" in shown, shown
    assert "did not finish" not in shown
    # A is in the history as not finished, not left as begun for ever.
    assert history(store) == [(A, "skipped", LOST), (B, done.verdict, done.reason)]


def test_a_stop_before_the_next_refit_began_keeps_the_killed_ones_record(
    store: Store, tmp_path: Path, database_url: str
) -> None:
    """SIGTERM while the restarted daemon's child has not yet written its refit: the stop
    forgets that refit only, never the killed one before it."""
    kill_during_refit(store, tmp_path)
    restart_and_stop(store, begins=False)
    shown = doctor(tmp_path, database_url, B + timedelta(minutes=1)).stdout
    assert f"ok   last refit: 2026-12-01 10:10 UTC, {LOST}" in shown, shown
    assert history(store) == [(A, "skipped", LOST)]
