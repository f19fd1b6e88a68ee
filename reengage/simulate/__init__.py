"""``reengage simulate``: replay the campaigns from ``now`` as the daemon would run them;
nothing is sent or written.

The replay starts where the database stands: enrollments still running carry on from their
next step (their mail is part of the plan), earlier enrollments hold customers back for each
campaign's ``not_enrolled_within_days``, mail sent in the last week counts against the
frequency cap, and paused customers wait for their pause to end. From there nobody responds
(see :data:`Simulation.assumptions`). Entry is the daemon's audience rule; sends go through
the daemon's window, cap and step conditions in time order, so the cap is counted exactly
as the daemon counts it. The plan is kept by calendar day in the business zone.

The plan's shape is in ``plan``, the event queue that fills it in ``replay``, and what it
says beside its days (assumptions, a rendered sample of each mail step) in ``report``.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from reengage.audience import entry_day
from reengage.campaigns import Campaign
from reengage.compose import Workspace
from reengage.digest.calllist import rep_zone
from reengage.models import EnrollmentStatus
from reengage.scoring import assess_all, current_model
from reengage.sendtimes import FrequencyCap
from reengage.simulate.plan import DayPlan, PlannedEntry, PlannedMail, Simulation
from reengage.simulate.replay import DAY, Candidate, Replay
from reengage.simulate.report import SAMPLE, assumptions, render_sample
from reengage.store import Store
from reengage.timeutil import days_later
from reengage.uplift import min_uplift_left_out
from reengage.workdays import WorkingDays

__all__ = [
    "SAMPLE",
    "DayPlan",
    "PlannedEntry",
    "PlannedMail",
    "Simulation",
    "simulate",
]

WEEK = timedelta(days=7)
CHUNK = 10_000


def simulate(
    ws: Workspace,
    store: Store,
    campaigns: list[Campaign],
    *,
    now: datetime,
    days: int,
    only: str | None = None,
    sample: int = SAMPLE,
    incomplete: bool = False,
    working_days: WorkingDays | None = None,
) -> Simulation:
    """Replay ``campaigns`` from ``now`` for ``days`` days. Nothing is sent or written.

    Every campaign given competes for customers and shares the cap; with ``only``, just that
    campaign's part is reported. Up to ``sample`` planned customers per mail step are
    rendered, and each failure is reported with the customer and the reason. With
    ``incomplete`` (some campaign file does not load), a running enrollment whose campaign
    is missing waits for the fix, as the daemon makes it wait, instead of ending. A
    campaign's call is counted on the day its rep's list shows it: the rep's local date, or
    the next of ``working_days`` (``REENGAGE_DIGEST_DAYS``, ``..._SKIP_DATES``).
    """
    end = days_later(now, days, ws.zone)  # calendar days: 23 or 25 hours across DST
    model = current_model(store)
    _, assessments = assess_all(store, now, model=model)
    ids = [a.profile.customer_id for a in assessments]
    free_now = store.customers.contactable(ids, now)
    info = store.customers.contactable(ids, end - timedelta(microseconds=1))
    paused = store.customers.customers_by_ids(set(info) - set(free_now))
    running = store.sending.running_enrollments()
    entering = sorted(
        (c for c in campaigns if c.enabled and c.audience is not None), key=lambda c: -c.priority
    )
    # As measured now (or kept by the daemon), for the whole plan; a plan writes nothing.
    left_out = min_uplift_left_out(store, entering, now, keep=False)
    window = store.attribution_window  # a holdout member enters nothing while it runs
    longest = max((c.not_enrolled_within_days for c in entering), default=0)
    since = now - max(timedelta(days=longest), window)
    history = store.sending.enrollment_history(sorted(info), since)
    cap = FrequencyCap(ws.max_emails_per_week, WEEK)
    if ws.max_emails_per_week:
        for chunk in _chunks(sorted(set(info) | {r.customer_id for r in running})):
            for cid, sent in store.sending.sent_since_many(chunk, now - WEEK).items():
                for at in sorted(sent):
                    cap.record(cid, at)
    plan = Simulation.covering(now, end, ws.zone)
    replay = Replay(ws, plan, model, cap, days, only, info, window)
    replay.incomplete = incomplete
    replay.left_out = left_out
    replay.working_days = working_days or WorkingDays()
    replay.rep_zones = {rep.external_id: rep_zone(rep) for rep in store.calls.reps()}
    replay.assessments = {a.profile.customer_id: a for a in assessments}
    for cid, campaign_id, status, enrolled_at in history:
        key = (cid, campaign_id)
        replay.recent[key] = max(enrolled_at, replay.recent.get(key, enrolled_at))
        if status == EnrollmentStatus.HOLDOUT:
            replay.hold(cid, enrolled_at)
    by_id = {c.id: c for c in campaigns}
    conditional = [
        r.enrollment_id
        for r in running
        if (c := by_id.get(r.campaign_id)) and any(s.condition for s in c.steps)
    ]
    responses = store.responses.kinds_by_enrollment(conditional) if conditional else {}
    for r in running:
        replay.carry_on(r, by_id.get(r.campaign_id), responses.get(r.enrollment_id, set()))
    for a in assessments:
        cid = a.profile.customer_id
        if cid not in info:
            replay.skip(None, "never contacted: no consent, do not contact, suppressed or paused")
            continue
        pause = paused[cid].paused_until if cid in paused else None
        first = 0 if pause is None else max(0, math.ceil((pause - now) / DAY))
        for rank, campaign in enumerate(entering):
            if (
                not replay.propose(Candidate(cid, campaign, rank), first)
                and pause is not None
                and entry_day(campaign, a, info[cid], days, model) is not None
            ):
                replay.skip(campaign, "paused (at their request) while in its audience")
    replay.run()
    for cands in replay.parked.values():
        for cand in cands:
            if not cand.again:
                replay.skip(cand.campaign, "still in another campaign when the plan ends")
    plan.assumptions = assumptions(
        ws, [c for c in campaigns if replay.shown(c.id)], sample, replay.working_days, now
    )
    render_sample(ws, store, plan, by_id, replay.locales, sample)
    return plan


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]
