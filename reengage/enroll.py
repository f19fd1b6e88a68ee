"""The detection pass: who meets a campaign's audience today is enrolled, once.

``detect_and_enroll`` takes ``now`` and reads everything it decides on from the store;
the scheduler runs it in a thread (it scores every customer), off the event loop.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from reengage.audience import entry_day
from reengage.campaigns import Campaign, ExitReason
from reengage.logs import get_logger
from reengage.scoring import assess_all, current_model
from reengage.store import Store
from reengage.store.sending import NewEnrollment

log = get_logger(__name__)


@dataclass
class EnrollReport:
    """What a detection pass did."""

    entered: Counter[str] = field(default_factory=Counter)
    held_out: Counter[str] = field(default_factory=Counter)
    exited: int = 0
    skipped: str | None = None  # why no pass ran (another worker's ran this tick)


def detect_and_enroll(store: Store, campaigns: list[Campaign], now: datetime) -> EnrollReport:
    """Enroll everyone who meets an enabled campaign's audience today.

    Skips customers without consent, marked do-not-contact, already in a campaign that
    does not run in parallel, or enrolled in this campaign within its
    ``not_enrolled_within_days``. Higher-priority campaigns choose first. Holdout members
    are recorded, never contacted. Enrollments whose customer came back are ended first.
    """
    report = EnrollReport()
    with_activity_exit = [
        c.id for c in campaigns if {ExitReason.ACTIVITY, ExitReason.PURCHASE} & set(c.exit_on)
    ]
    report.exited = store.sending.exit_on_activity(with_activity_exit, now)
    active = sorted(
        (c for c in campaigns if c.enabled and c.audience is not None), key=lambda c: -c.priority
    )
    if not active:
        return report
    model = current_model(store)
    _, assessments = assess_all(store, now, model=model)
    contactable = store.customers.contactable((a.profile.customer_id for a in assessments), now)
    candidates = [a for a in assessments if a.profile.customer_id in contactable]
    longest = max(c.not_enrolled_within_days for c in active)
    history = store.sending.enrollment_history(
        [a.profile.customer_id for a in candidates], now - timedelta(days=longest)
    )
    busy = {cid for cid, _, status, _ in history if status in ("active", "attention")}
    recent: dict[tuple[int, str], datetime] = {}
    for cid, campaign_id, _, enrolled_at in history:
        recent[(cid, campaign_id)] = max(enrolled_at, recent.get((cid, campaign_id), enrolled_at))
    new: list[NewEnrollment] = []
    for campaign in active:
        cutoff = now - timedelta(days=campaign.not_enrolled_within_days)
        first = campaign.steps[0]
        for a in candidates:
            cid = a.profile.customer_id
            if (cid, campaign.id) in recent and recent[(cid, campaign.id)] >= cutoff:
                continue
            if cid in busy and not campaign.allow_parallel:
                continue
            if entry_day(campaign, a, contactable[cid], 1, model) != 0.0:
                continue
            holdout = campaign.in_holdout(a.customer_id)
            new.append(NewEnrollment(cid, campaign.id, holdout, first.key, now + first.after))
            recent[(cid, campaign.id)] = now
            if holdout:
                report.held_out[campaign.id] += 1
            else:
                report.entered[campaign.id] += 1
                busy.add(cid)
    store.sending.enroll(new, now)
    log.info(
        "enrollment_pass",
        entered=dict(report.entered),
        held_out=dict(report.held_out),
        exited=report.exited,
    )
    return report
