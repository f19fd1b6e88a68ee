"""`reengage score`, `score --backtest` and `doctor` say which horizon the lapse score
answers for and why, and what the daemon's last refit decided: real imports, real databases."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reengage import refit, scoring
from reengage.detection_runner import REFIT_HOLD
from reengage.lapse_model import LapseModel
from reengage.refit import REFIT_LOCK, refit_due, refit_model
from reengage.store import Store
from tests.integration import inprocess
from tests.integration.rhythm_world import FAST, SLOW, Business, write_history

pytestmark = pytest.mark.clock  # the commands read the (pinned) process clock
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
RHYTHM = re.compile(
    r"Lapse score = P\(no order within (\d+) days\): chosen from your customers' rhythm: "
    r"median gap (\d+) days among (\d+) regular buyers → horizon \1 days\."
)


def cli(*args: str, cwd: Path, url: str, now: datetime = NOW, **settings: str) -> inprocess.Result:
    env = {
        "REENGAGE_DATABASE_URL": url,
        "REENGAGE_NOW": now.isoformat(),
        "REENGAGE_SECRET_KEY": "d" * 40,
        "REENGAGE_SPOOL_DIR": str(cwd / "spool"),
        "COLUMNS": "200",
        **{f"REENGAGE_{name.upper()}": value for name, value in settings.items()},
    }
    return inprocess.cli(*args, cwd=cwd, env=env)


def imported(tmp_path: Path, url: str, business: Business) -> None:
    people, orders = write_history(tmp_path / "data", business, customers=400, now=NOW)
    assert cli("db", "upgrade", cwd=tmp_path, url=url).returncode == 0
    for kind, path in (("customers", people), ("activities", orders)):
        result = cli("import", kind, str(path), cwd=tmp_path, url=url)
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("business", "shortest", "longest"),
    [(FAST, 21, 35), (SLOW, 250, 364)],
    ids=["grocer", "furniture"],
)
def test_score_and_doctor_show_the_horizon_chosen_from_the_rhythm(
    tmp_path: Path, database_url: str, business: Business, shortest: int, longest: int
) -> None:
    imported(tmp_path, database_url, business)
    scored = cli("score", cwd=tmp_path, url=database_url)
    assert scored.returncode == 0, scored.stderr
    found = RHYTHM.search(scored.stdout)
    assert found is not None, scored.stdout
    days, gap = int(found[1]), int(found[2])
    assert shortest <= days <= longest
    assert abs(days - 3 * gap) <= 5  # three typical gaps, to whole weeks

    written = cli("score", "--out", str(tmp_path / "all.csv"), cwd=tmp_path, url=database_url)
    assert RHYTHM.search(written.stdout) is not None, written.stdout
    # Today's scores are the model in force's: a horizon there would be silently ignored.
    ignored = cli("score", "--horizon", "30d", cwd=tmp_path, url=database_url)
    assert ignored.returncode == 2
    assert f"model in force's (horizon {days} days)" in ignored.stderr, ignored.stderr
    assert "reengage score --fit --horizon 30d" in ignored.stderr

    doctor = cli("doctor", cwd=tmp_path, url=database_url).stdout
    assert f"ok   lapse horizon: {days} days, chosen from your customers' rhythm: " in doctor
    assert "ok   lapse model: the rhythm prior: no model fitted yet" in doctor, doctor
    assert "ok   last refit: none yet" in doctor
    assert (
        "ok   next refit: due now: a running daemon starts it within 10 minutes "
        "(every 24 hours)" in doctor
    )
    off = cli("doctor", cwd=tmp_path, url=database_url, model_refit_every_hours="0").stdout
    assert (
        "ok   next refit: refit off: the daemon never refits "
        "(REENGAGE_MODEL_REFIT_EVERY_HOURS=0)" in off
    ), off

    fitted = cli("score", "--fit", cwd=tmp_path, url=database_url)
    assert fitted.returncode == 0, fitted.stderr
    assert RHYTHM.search(fitted.stdout) is not None, fitted.stdout
    assert "saved: detection" in fitted.stdout
    assert (
        f"lapse horizon: {days} days, chosen from your customers' rhythm"
        in cli("doctor", cwd=tmp_path, url=database_url).stdout
    )


def test_backtest_shows_several_horizons_and_marks_the_chosen_one(
    tmp_path: Path, database_url: str
) -> None:
    imported(tmp_path, database_url, FAST)
    result = cli("score", "--backtest", "--as-of", "2026-08-01", cwd=tmp_path, url=database_url)
    assert result.returncode == 0, result.stderr
    found = RHYTHM.search(result.stdout)
    assert found is not None, result.stdout
    days = int(found[1])
    assert "The lapse score at several horizons" in result.stdout
    rows = {int(m[1]): m[0] for m in re.finditer(r"│ (\d+) days\s+│[^\n]*", result.stdout)}
    assert sorted(rows) == [round(days / 2), days, 2 * days], result.stdout
    assert "◀ chosen" in rows[days]
    assert "◀" not in rows[round(days / 2)] + rows[2 * days]
    for row in rows.values():  # did not come back, ROC AUC, top-10% precision, recency's
        assert re.search(r"\d+ of \d+\s+│\s+0\.\d{3}\s+│\s+\d+%\s+│\s+0\.\d{3}", row), row

    named = cli(
        "score",
        "--backtest",
        "--as-of",
        "2026-08-01",
        "--horizon",
        "20d",
        cwd=tmp_path,
        url=database_url,
    )
    assert named.returncode == 0, named.stderr
    assert "P(no order within 20 days): named by the operator (--horizon 20d)." in named.stdout
    assert re.search(r"│ 20 days\s+│ ◀ named", named.stdout), named.stdout
    assert "│ 10 days" in named.stdout and "│ 40 days" in named.stdout

    # The chosen horizon decides which dates can be checked yet.
    late = (NOW - timedelta(days=days - 7)).date().isoformat()
    refused = cli("score", "--backtest", "--as-of", late, cwd=tmp_path, url=database_url)
    assert refused.returncode == 2
    assert f"the horizon chosen from your customers' rhythm ({days} days)" in refused.stderr
    assert "which has not come yet" in refused.stderr


@pytest.mark.parametrize(
    ("in_force", "zone", "local"),
    [("poor", "UTC", "12:00 UTC"), ("knowing", "Europe/Berlin", "13:00 Europe/Berlin")],
)
def test_doctor_shows_the_model_in_force_the_last_refit_and_the_next(
    tmp_path: Path, database_url: str, in_force: str, zone: str, local: str
) -> None:
    imported(tmp_path, database_url, FAST)
    store = Store.open(database_url)
    try:
        choice = scoring.rhythm_horizon(store)
        if in_force == "poor":  # ranks the faithful as the lost
            weights = (0.0, -1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
            model = LapseModel(choice.days, weights, NOW - timedelta(days=90), 300)
        else:  # what the refit fits itself: a tie keeps it
            model = scoring.fit_model(store, NOW - timedelta(days=choice.days), choice).model
        store.lapse_models.save(
            model, horizon=choice, auc=0.5, auc_recency=None, now=NOW - timedelta(days=3)
        )
        refit = refit_model(store, NOW)
    finally:
        store.close()
    doctor = cli("doctor", cwd=tmp_path, url=database_url, timezone=zone).stdout
    assert refit.candidate_auc is not None and refit.in_force_auc is not None
    figures = f"ROC AUC {refit.candidate_auc:.4f} against {refit.in_force_auc:.4f}"
    start = NOW - timedelta(days=choice.days)
    # When the next refit is due, in the business's zone as the last one's time.
    assert f"ok   next refit: due 2026-11-02 {local} (every 24 hours)" in doctor, doctor
    if in_force == "poor":
        assert f"ok   last refit: 2026-11-01 {local}, kept the new model: {figures}" in doctor
        assert f"ok   lapse model: fitted on the history up to {start:%Y-%m-%d} " in doctor, doctor
        assert (
            f"backtest on the window from {start:%Y-%m-%d} it never saw: "
            f"ROC AUC {refit.candidate_auc:.4f}, top 10% " in doctor
        )
    else:
        assert f"last refit: 2026-11-01 {local}, rejected the new model: {figures}" in doctor
        assert "the model in force stays" in doctor
        assert f"ok   lapse model: fitted on the history up to {start:%Y-%m-%d} " in doctor
        assert "ROC AUC 0.500 on the history it was fitted on" in doctor


class Killed(BaseException):
    """The refit's process dies here: nothing after this line of the refit runs."""


def test_doctor_says_a_refit_killed_midway_did_not_finish_and_the_model_stays(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    imported(tmp_path, database_url, FAST)
    store = Store.open(database_url)
    try:
        with monkeypatch.context() as patched:
            patched.setattr(refit, "fit_model", lambda *_: (_ for _ in ()).throw(Killed()))
            with pytest.raises(Killed):
                refit_model(store, NOW)
        assert store.lapse_models.in_force() is None  # still the rhythm prior
        # Not again at once: a refit that kills its process would kill it every few minutes.
        assert not refit_due(store, NOW + timedelta(minutes=10), timedelta(hours=24))
        # Its worker took the lease as the daemon does, and was killed (kill -9) at once:
        # nothing renews the lease (every third of REFIT_HOLD while a worker lives).
        assert store.locks.try_lock(REFIT_LOCK, "worker-1", NOW, REFIT_HOLD)
    finally:
        store.close()
    minute = timedelta(minutes=1)
    running = cli("doctor", cwd=tmp_path, url=database_url, now=NOW + minute).stdout
    assert "ok   last refit: under way since 2026-11-01 12:00 UTC" in running, running

    # Minutes later, not half an hour: the lease was not renewed, its worker stopped.
    later = NOW + REFIT_HOLD + minute
    assert later <= NOW + timedelta(minutes=4)
    doctor = cli("doctor", cwd=tmp_path, url=database_url, now=later)
    assert doctor.returncode == 1
    assert (
        "FAIL last refit: did not finish: begun 2026-11-01 12:00 UTC, its worker stopped "
        "renewing the refit's lease before a verdict (its lease ran out "
        f"{NOW + REFIT_HOLD:%Y-%m-%d %H:%M} UTC): killed, or out of memory"
    ) in doctor.stdout, doctor.stdout
    assert "the model in force is unchanged" in doctor.stdout
    # Not again at once: the next refit is a period after the one that did not finish.
    assert "ok   next refit: due 2026-11-02 12:00 UTC (every 24 hours)" in doctor.stdout
    assert "ok   lapse model: the rhythm prior: no model fitted yet" in doctor.stdout

    store = Store.open(database_url)
    try:
        done = refit_model(store, NOW + timedelta(days=1))  # the next one comes to a verdict
    finally:
        store.close()
    after = cli("doctor", cwd=tmp_path, url=database_url).stdout
    assert "did not finish" not in after
    assert f"last refit: 2026-11-02 12:00 UTC, {done.reason}" in after


@pytest.mark.parametrize(
    ("written", "fix"),
    [
        ("11h", "write 1d"),
        ("23h", "write 1d"),
        ("36h", "write 2d"),
        ("1.5d", "write 2d"),
        ("1min", "write 1d"),
    ],
)
def test_a_horizon_that_is_not_whole_days_is_refused_with_the_fix(
    tmp_path: Path, database_url: str, written: str, fix: str
) -> None:
    """ "Within 11 hours" would be saved as a 0-day model that calls everyone lapsed."""
    assert cli("db", "upgrade", cwd=tmp_path, url=database_url).returncode == 0
    for args in (("--fit",), ("--backtest", "--as-of", "2026-08-01")):
        result = cli("score", *args, "--horizon", written, cwd=tmp_path, url=database_url)
        assert result.returncode == 2, result.stdout
        assert "a horizon is counted in whole days" in result.stderr and fix in result.stderr
    assert "saved" not in result.stdout
