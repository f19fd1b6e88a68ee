"""The daemon's refit of the lapse model: a new model is kept only when it ranks the
customers who did not come back better than the one in force, on a window neither saw.

At ``now``:

1. The horizon: the one the operator named for the model in force (``score --fit
   --horizon``), else the one today's customers' rhythm calls for (:mod:`reengage.horizon`).
2. The held-out window: customers as they stood at ``now - horizon``, and who of them
   ordered again by ``now`` — the newest window whose outcome is known.
3. The candidate is fitted on what was known at the window's start (scored a horizon
   before it, labelled at it), so it never sees the window. A model the refit kept was
   fitted the same way on an earlier day, so it did not see this window either.
4. Candidate and model in force (or the rhythm prior, before any fit) are ranked on the
   window by ROC AUC. The candidate is kept only when its AUC is higher by at least
   :data:`MIN_AUC_GAIN`; a tie or a smaller gain keeps the model in force (no change
   without evidence: a gain in the fourth decimal is noise, not a better model).

One worker of many refits, under the :data:`REFIT_LOCK` lease, which it renews while it
works and lets go of when the refit ends or a stopping daemon abandons it
(:mod:`reengage.detection_runner`). Every refit is recorded as it begins and again with its
verdict and both figures (``store.lapse_models``: what ``doctor`` shows), and logged as one
``model_refit`` event. One that never came to a verdict (its worker was killed, or ran out
of memory) stays recorded as begun: once its lease runs out unrenewed, ``doctor`` says it
did not finish, and the model in force is unchanged. The next refit to begin closes it as
such (:func:`close_lost`), so a later refit, finished or forgotten by a stop, never tells
its story for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reengage.backtest import MethodResult
from reengage.backtesting import Window
from reengage.horizon import HorizonSource
from reengage.i18n import days
from reengage.lapse_model import LapseModel
from reengage.logs import get_logger
from reengage.scoring import fit_model, rhythm_horizon
from reengage.store import Store
from reengage.store.lapse_models import HeldOut, Refit

log = get_logger(__name__)

KEPT, REJECTED, SKIPPED = "kept", "rejected", "skipped"
REFIT_LOCK = "refit_lapse_model"  # the lease one worker of many refits under
REFIT_CHECK_S = 600  # how often a worker asks the database whether a refit is due
# How much higher a new model's held-out ROC AUC must be for the refit to keep it: a floor
# against swapping models on noise (a gain in the fourth decimal), not a significance test.
# README: "The daemon refits the score on its own".
MIN_AUC_GAIN = 0.002


def next_refit_at(last: Refit | None, now: datetime, every: timedelta) -> datetime:
    """When the next refit is due: ``now`` before the first one, or when the last one is
    dated after ``now`` (a clock set back must not stop refits for good); else ``every``
    after the last one."""
    if last is None or last.at > now:
        return now
    return last.at + every


def refit_due(store: Store, now: datetime, every: timedelta) -> bool:
    """True when no refit has been made yet, or the last one is ``every`` old (or dated
    after ``now``)."""
    return now >= next_refit_at(store.lapse_models.last_refit(), now, every)


def refit_model(store: Store, now: datetime) -> Refit:
    """Fit a new lapse model, judge it against the one in force on the newest held-out
    window, keep it only when it is better, and record and log the verdict."""
    in_force = store.lapse_models.in_force()
    if (
        in_force is not None
        and in_force.horizon is not None
        and (in_force.horizon.source is HorizonSource.OPERATOR)
    ):
        choice = in_force.horizon
    else:
        choice = rhythm_horizon(store)
    with store.atomic():  # the refits lost before it closed, and this one begun, together
        close_lost(store, now)
        store.lapse_models.begin_refit(now, choice.days)
    start = now - timedelta(days=choice.days)
    seen = in_force.model.fitted_as_of if in_force is not None else None
    if seen is not None and seen > start:
        # Fitted knowing who came back after `start` (`score --fit` fits as of now): on the
        # newest window it would be judged on what it learnt from, and always win.
        return _skipped(
            store,
            now,
            choice.days,
            start,
            f"skipped: the model in force was fitted as of {seen:%Y-%m-%d}, knowing who "
            f"came back after {start:%Y-%m-%d}; no window it has not seen can judge it "
            f"before {seen + timedelta(days=choice.days):%Y-%m-%d}",
        )
    current = in_force.model if in_force is not None else LapseModel(choice.days)
    current_name = "the model in force" if in_force is not None else "the rhythm prior"
    candidate = fit_model(store, start, choice)
    if candidate.kept_prior_because is not None:
        return _skipped(
            store,
            now,
            choice.days,
            start,
            f"skipped, no new model could be fitted: {candidate.kept_prior_because}",
        )
    window = Window.read(store, start, choice.days)
    new = window.judge("candidate", candidate.model)
    old = window.judge(current_name, current)
    if new.auc is None or old.auc is None:
        return _record(
            store,
            _verdict(
                now,
                SKIPPED,
                choice.days,
                start,
                new,
                old,
                f"skipped: every customer or none came back between {start:%Y-%m-%d} and "
                f"{now:%Y-%m-%d}: nothing to rank on",
            ),
        )
    gain = new.auc - old.auc
    better = round(gain, 9) >= MIN_AUC_GAIN  # 0.955 - 0.953 is 0.0019999… in floats
    digits = _digits(new.auc, old.auc)
    reason = (
        f"{'kept' if better else 'rejected'} the new model: ROC AUC {new.auc:.{digits}f} "
        f"against {old.auc:.{digits}f} for {current_name} ({gain:+.{digits}f}; a new model "
        f"must gain at least "
        f"{MIN_AUC_GAIN}), on the customers as of {start:%Y-%m-%d} and who ordered again by "
        f"{now:%Y-%m-%d} (horizon {days(choice.days)})"
        + ("" if better else f"; {current_name} stays")
    )
    refit = _verdict(now, KEPT if better else REJECTED, choice.days, start, new, old, reason)
    if not better:
        return _record(store, refit)
    with store.atomic():  # the model and its verdict together, or neither
        model_id = store.lapse_models.save(
            candidate.model,
            horizon=choice,
            auc=candidate.auc,
            auc_recency=candidate.auc_recency,
            now=now,
            held_out=HeldOut(start, new.auc, new.precision_top10),
        )
        return _record(store, refit, model_id)


def close_lost(store: Store, now: datetime) -> list[Refit]:
    """Close every refit still recorded as begun, as a refit begins at ``now`` under the
    lease (so none of them is at work): its worker stopped before a verdict. Each keeps the
    moment it began (the next refit is still a period after it) and says when it was found
    so. A graceful stop forgets its refit instead (``lapse_models.forget_unfinished``), so
    what is left is a worker that was killed or ran out of memory."""
    reason = (
        "did not finish: its worker stopped before a verdict (killed, or out of memory; "
        f"found so {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC, as the next refit began); the "
        "model in force stayed"
    )
    lost = store.lapse_models.close_unfinished(SKIPPED, reason)
    for refit in lost:
        log.warning(
            "model_refit",
            verdict=refit.verdict,
            begun=refit.at.isoformat(),
            horizon_days=refit.horizon_days,
            reason=refit.reason,
        )
    return lost


def refit_lost(store: Store, now: datetime, why: str) -> Refit:
    """Record a refit that never came to a verdict (its process died), over the one begun
    at ``now`` if it was recorded as begun, so the next one is a period away rather than at
    once: a refit that kills its process must not do so every few minutes."""
    in_force = store.lapse_models.in_force()
    days = in_force.model.horizon_days if in_force is not None else rhythm_horizon(store).days
    return _skipped(store, now, days, None, f"skipped: {why}; the model in force stays")


def _digits(a: float, b: float) -> int:
    """Decimals enough (4, up to 6) that two different figures do not print the same."""
    digits = 4
    while digits < 6 and a != b and f"{a:.{digits}f}" == f"{b:.{digits}f}":
        digits += 1
    return digits


def _skipped(
    store: Store, now: datetime, horizon_days: float, start: datetime | None, reason: str
) -> Refit:
    # A refit that came to no figures: recorded, so the next one is a period away.
    return _record(store, Refit(now, SKIPPED, horizon_days, start, None, None, None, None, reason))


def _verdict(
    now: datetime,
    verdict: str,
    horizon_days: float,
    start: datetime,
    new: MethodResult,
    old: MethodResult,
    reason: str,
) -> Refit:
    return Refit(
        now,
        verdict,
        horizon_days,
        start,
        new.auc,
        old.auc,
        new.precision_top10,
        old.precision_top10,
        reason,
    )


def _record(store: Store, refit: Refit, model_id: int | None = None) -> Refit:
    store.lapse_models.record_refit(refit, model_id)
    log.info(
        "model_refit",
        verdict=refit.verdict,
        candidate_auc=refit.candidate_auc,
        in_force_auc=refit.in_force_auc,
        candidate_precision_top10=refit.candidate_precision,
        in_force_precision_top10=refit.in_force_precision,
        horizon_days=refit.horizon_days,
        held_out_from=refit.held_out_from.isoformat() if refit.held_out_from else None,
        reason=refit.reason,
    )
    return refit
