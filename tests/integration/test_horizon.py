"""The horizon chosen from the business's rhythm, the backtest at several horizons and the
daemon's refit, on real databases with generated histories of a fast and a slow business."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from reengage import backtesting, scoring
from reengage.campaigns import parse_campaign
from reengage.enroll import detect_and_enroll
from reengage.horizon import HorizonSource
from reengage.lapse_model import LapseModel
from reengage.refit import refit_due, refit_model
from reengage.store import Store
from tests.integration.rhythm_world import FAST, SLOW, Business, import_history

NOW = datetime(2026, 11, 1, tzinfo=UTC)
INVERTED = (0.0, -1.0, 0.0, 0.0, 0.0, 0.0, -1.0)  # ranks the faithful as the lost


def history(store: Store, tmp_path: Path, business: Business) -> Store:
    import_history(store, tmp_path / business.name, business, customers=400, now=NOW)
    return store


@pytest.mark.parametrize(
    ("business", "shortest", "longest"),
    [(FAST, 21, 35), (SLOW, 250, 364)],  # a grocer's month is lost, furniture's is normal
    ids=["grocer", "furniture"],
)
def test_a_fast_and_a_slow_business_get_different_default_horizons(
    store: Store, tmp_path: Path, business: Business, shortest: float, longest: float
) -> None:
    """Each business's score answers its own question when nobody names a horizon: the
    daemon's prior and a fit both use three typical gaps of its regular buyers."""
    history(store, tmp_path, business)
    choice = scoring.rhythm_horizon(store)
    assert choice.source is HorizonSource.RHYTHM
    assert shortest <= choice.days <= longest
    assert abs(choice.days - 3 * (choice.median_gap_days or 0)) <= 3.5  # to whole weeks
    # The daemon, before any fit, scores with the rhythm prior at that horizon.
    assert scoring.current_model(store).horizon_days == choice.days
    model, shown = scoring.horizon_in_force(store)
    assert (model.horizon_days, shown) == (choice.days, choice)
    # A fit with no horizon named chooses it from the history as of its date.
    fit = scoring.fit_model(store, NOW)
    assert fit.kept_prior_because is None
    assert fit.model.horizon_days == fit.horizon.days
    assert abs(fit.horizon.days - choice.days) <= 14
    assert fit.horizon.source is HorizonSource.RHYTHM


LAPSED = """\
id: habit
name: Habit lapsed
audience:
  lapsed: {factor: 2.0, min_days_silent: 21}
from: "Acme <hello@acme.example>"
steps:
  - {key: first, after: 0d, subject: Hi, template: tips/tip-1.html.j2}
"""


def test_the_daemon_keeps_the_rhythm_horizon_with_the_population_until_its_daily_refit(
    store: Store, tmp_path: Path
) -> None:
    """Before any fit, two passes a minute apart answer for the same horizon, however new
    customers move the sample it is read from; it is chosen again with the population."""
    campaign, problems = parse_campaign(LAPSED, "campaigns/habit.yaml")
    assert campaign is not None, problems
    history(store, tmp_path, FAST)
    assert detect_and_enroll(store, [campaign], NOW).whole
    kept = scoring.rhythm_horizon(store)
    assert kept.source is HorizonSource.RHYTHM and 21 <= kept.days <= 35  # a grocer's

    # Furniture buyers arrive: most of the sample is theirs now.
    import_history(store, tmp_path / "slow", SLOW, customers=1200, now=NOW)
    moved = scoring.sampled_horizon(store)
    assert moved.days > kept.days + 28
    assert scoring.current_model(store).horizon_days == kept.days  # `score`, mails, digests
    again = detect_and_enroll(store, [campaign], NOW + timedelta(minutes=1))
    assert not again.whole  # the same question: only who is due is looked at
    assert scoring.rhythm_horizon(store) == kept
    assert scoring.horizon_in_force(store) == (LapseModel(kept.days), kept)  # doctor's

    # The daily refit of the population chooses the horizon again, once.
    later = detect_and_enroll(store, [campaign], NOW + timedelta(days=1, minutes=1))
    assert later.whole
    assert scoring.rhythm_horizon(store) == moved
    assert scoring.current_model(store).horizon_days == moved.days


def test_backtest_sets_half_and_double_the_chosen_horizon_beside_it(
    store: Store, tmp_path: Path
) -> None:
    history(store, tmp_path, FAST)
    as_of = NOW - timedelta(days=60)
    report, _ = backtesting.backtest(store, as_of=as_of, now=NOW)
    assert report.choice.source is HorizonSource.RHYTHM
    assert report.horizon == timedelta(days=report.choice.days)
    days = [h.days for h in report.horizons]
    chosen = report.choice.days
    assert days == [round(chosen / 2), chosen, 2 * chosen]
    assert [h.chosen for h in report.horizons] == [False, True, False]
    for row in report.horizons:
        assert row.lapse is not None and row.lapse.auc is not None
        assert row.lapse.precision_top10 is not None
        assert row.ends == as_of + timedelta(days=row.days)
        assert 0 < row.did_not_return < row.customers
    # The chosen row is the main report's own figure.
    [main] = [m for m in report.methods if m.name == "lapse_score (reengage)"]
    assert report.horizons[1].lapse == main
    # Fewer customers come back within a shorter horizon.
    assert report.horizons[0].did_not_return > report.horizons[2].did_not_return
    # A horizon whose window has not ended yet is listed as such, never made up.
    late, _ = backtesting.backtest(store, as_of=NOW - timedelta(days=chosen + 1), now=NOW)
    assert late.horizons[2].lapse is None and late.horizons[2].ends > NOW
    assert late.horizons[1].lapse is not None


def test_a_refit_better_than_the_model_in_force_is_kept(store: Store, tmp_path: Path) -> None:
    history(store, tmp_path, FAST)
    choice = scoring.rhythm_horizon(store)
    poor = LapseModel(choice.days, INVERTED, NOW - timedelta(days=100), 300)
    store.lapse_models.save(
        poor, horizon=choice, auc=None, auc_recency=None, now=NOW - timedelta(days=5)
    )
    with capture_logs() as logs:
        refit = refit_model(store, NOW)
    assert refit.verdict == "kept"
    assert refit.candidate_auc is not None and refit.in_force_auc is not None
    assert refit.candidate_auc > 0.8 > 0.2 > refit.in_force_auc
    [event] = [e for e in logs if e["event"] == "model_refit"]
    assert event["verdict"] == "kept"
    assert (event["candidate_auc"], event["in_force_auc"]) == (
        refit.candidate_auc,
        refit.in_force_auc,
    )
    now_in_force = store.lapse_models.in_force()
    assert now_in_force is not None
    assert now_in_force.model.weights != INVERTED
    assert now_in_force.model.fitted_as_of == NOW - timedelta(days=choice.days)  # never saw
    assert now_in_force.held_out is not None
    assert now_in_force.held_out.auc == refit.candidate_auc
    assert now_in_force.horizon == choice
    assert store.lapse_models.last_refit() == refit
    assert scoring.current_model(store) == now_in_force.model  # detection scores with it


@pytest.mark.parametrize(
    ("candidate", "verdict", "figures"),
    [
        (0.95303, "rejected", "ROC AUC 0.95303 against 0.95300 for the rhythm prior (+0.00003;"),
        (0.95490, "rejected", "ROC AUC 0.9549 against 0.9530 for the rhythm prior (+0.0019;"),
        (0.95500, "kept", "ROC AUC 0.9550 against 0.9530 for the rhythm prior (+0.0020;"),
    ],
)
def test_a_refit_keeps_a_new_model_only_on_a_gain_of_min_auc_gain(
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    candidate: float,
    verdict: str,
    figures: str,
) -> None:
    """A gain in the fourth decimal is noise: the model in force stays. The reason prints
    digits enough that two different figures read differently."""
    from reengage.backtest import MethodResult
    from reengage.backtesting import Window

    def judge(self: Window, name: str, model: LapseModel) -> MethodResult:
        auc = candidate if name == "candidate" else 0.953
        return MethodResult(name, auc, 0.5, 0.5)

    history(store, tmp_path, FAST)
    monkeypatch.setattr(Window, "judge", judge)
    with capture_logs() as logs:
        refit = refit_model(store, NOW)
    assert refit.verdict == verdict
    assert refit.reason.startswith(f"{verdict} the new model: {figures}"), refit.reason
    assert "a new model must gain at least 0.002)" in refit.reason
    [event] = [e for e in logs if e["event"] == "model_refit"]
    assert (event["verdict"], event["reason"]) == (verdict, refit.reason)
    if verdict == "rejected":
        assert refit.reason.endswith("; the rhythm prior stays")
        assert store.lapse_models.in_force() is None
    else:
        assert store.lapse_models.in_force() is not None


def test_a_refit_no_better_than_the_model_in_force_is_rejected(
    store: Store, tmp_path: Path
) -> None:
    """The model in force here is what the refit itself fits (the same history as of the
    same day): a tie keeps the model in force, and the log says so."""
    history(store, tmp_path, FAST)
    choice = scoring.rhythm_horizon(store)
    later = NOW + timedelta(hours=1)
    knowing = scoring.fit_model(store, later - timedelta(days=choice.days), choice)
    kept_id = store.lapse_models.save(
        knowing.model, horizon=choice, auc=knowing.auc, auc_recency=None, now=NOW
    )
    with capture_logs() as logs:
        refit = refit_model(store, later)
    assert refit.verdict == "rejected"
    assert refit.candidate_auc is not None and refit.in_force_auc is not None
    assert refit.candidate_auc <= refit.in_force_auc
    [event] = [e for e in logs if e["event"] == "model_refit"]
    assert event["verdict"] == "rejected"
    assert "the model in force stays" in event["reason"]
    still = store.lapse_models.in_force()
    assert still is not None and still.id == kept_id
    assert still.model == knowing.model
    assert store.lapse_models.last_refit() == refit


def test_a_model_fitted_knowing_the_newest_window_is_not_judged_on_it(
    store: Store, tmp_path: Path
) -> None:
    """`score --fit` fits as of now, knowing who came back in the window a refit would judge
    on: it would win there on what it learnt. The refit says so and waits until a window
    it has not seen exists, and the model stays."""
    history(store, tmp_path, FAST)
    choice = scoring.rhythm_horizon(store)
    knowing = scoring.fit_model(store, NOW, choice)
    kept_id = store.lapse_models.save(
        knowing.model, horizon=choice, auc=knowing.auc, auc_recency=None, now=NOW
    )
    refit = refit_model(store, NOW + timedelta(days=1))
    assert refit.verdict == "skipped"
    assert refit.reason.startswith(f"skipped: the model in force was fitted as of {NOW:%Y-%m-%d}")
    assert f"before {NOW + timedelta(days=choice.days):%Y-%m-%d}" in refit.reason
    still = store.lapse_models.in_force()
    assert still is not None and still.id == kept_id


def test_a_refit_without_enough_history_is_skipped_and_says_why(
    store: Store, tmp_path: Path
) -> None:
    import_history(store, tmp_path / "tiny", FAST, customers=40, now=NOW)
    refit = refit_model(store, NOW)
    assert refit.verdict == "skipped"
    assert "at least 200" in refit.reason
    assert store.lapse_models.in_force() is None


def test_a_refit_is_due_once_per_period(store: Store, tmp_path: Path) -> None:
    history(store, tmp_path, FAST)
    day = timedelta(hours=24)
    assert refit_due(store, NOW, day)
    refit_model(store, NOW)
    assert not refit_due(store, NOW + timedelta(hours=23), day)
    assert refit_due(store, NOW + day, day)
    assert refit_due(store, NOW - timedelta(hours=1), day)  # a clock set back: not stuck


def test_the_daemon_refits_once_a_period_and_not_when_told_never(
    store: Store, tmp_path: Path
) -> None:
    from reengage.compose import Workspace
    from reengage.config import load_settings
    from reengage.mailer import SmtpMailer
    from reengage.scheduler import Service

    history(store, tmp_path, FAST)
    settings = load_settings(env_file=None, model_refit_every_hours=24)
    clock = {"now": NOW}

    def service(every: timedelta | None) -> Service:
        ws = Workspace.from_settings(settings)
        return Service(
            store, SmtpMailer("127.0.0.1", 9), ws, clock=lambda: clock["now"], refit_every=every
        )

    assert service(None).refit() is None  # REENGAGE_MODEL_REFIT_EVERY_HOURS=0
    assert store.lapse_models.last_refit() is None
    daemon = service(settings.model_refit_every())
    with capture_logs() as logs:
        first = daemon.refit()
        clock["now"] = NOW + timedelta(hours=23)
        again = daemon.refit()
        clock["now"] = NOW + timedelta(hours=24)
        next_day = daemon.refit()
    assert first is not None and first.at == NOW
    assert again is None  # not due yet: the database says when the last one was
    assert next_day is not None and next_day.at == NOW + timedelta(hours=24)
    assert [e["verdict"] for e in logs if e["event"] == "model_refit"] == [
        first.verdict,
        next_day.verdict,
    ]


def test_the_refit_runs_in_the_detection_process_of_reengage_run(
    store: Store, tmp_path: Path, database_url: str
) -> None:
    """`reengage run` hands the refit to its detection child, off the daemon's loop; the
    verdict is the same as in the daemon's own process, and kept in the database."""
    from reengage.config import LogFormat
    from reengage.detection_process import ChildSetup, DetectionProcess

    history(store, tmp_path, FAST)
    child = DetectionProcess(ChildSetup(database_url, 30, "error", LogFormat.JSON, None))
    child.start()
    try:
        refit = child.refit(NOW)
    finally:
        child.close()
    assert refit is not None and refit.verdict in {"kept", "rejected"}
    assert store.lapse_models.last_refit() == refit
    assert child.refit(NOW) is None  # closed: the daemon is stopping


def test_a_refit_whose_process_died_waits_a_period_before_the_next(
    store: Store, tmp_path: Path
) -> None:
    """A refit that kills its process (out of memory) must not kill the next one ten
    minutes later: it is recorded as skipped, with the reason, and the next is a day away."""
    from typing import Any, cast

    from reengage.compose import Workspace
    from reengage.config import load_settings
    from reengage.mailer import SmtpMailer
    from reengage.scheduler import Service

    class Dies:
        def refit(self, now: datetime) -> None:
            return None  # as DetectionProcess.refit when its child died

        def close(self) -> None:
            pass

    history(store, tmp_path, FAST)
    ws = Workspace.from_settings(load_settings(env_file=None))
    daemon = Service(
        store,
        SmtpMailer("127.0.0.1", 9),
        ws,
        clock=lambda: NOW,
        refit_every=timedelta(hours=24),
        detection=cast(Any, Dies()),
    )
    lost = daemon.refit()
    assert lost is not None and lost.verdict == "skipped"
    assert "died during the refit" in lost.reason
    assert store.lapse_models.last_refit() == lost
    assert not refit_due(store, NOW + timedelta(minutes=10), timedelta(hours=24))
