"""The detection pass: who meets a campaign's audience today is enrolled, once.

``detect_and_enroll`` takes ``now`` and reads everything it decides on from the store; the
scheduler runs it in a thread, off the event loop. It looks only at the customers who are
due (``customer_stats.look_again_at``, see :mod:`reengage.store.looks`), in chunks: after
deciding about a customer it writes the earliest moment they could enter a campaign as
their record stands (:func:`reengage.audience.next_look`), and anything that changes what
it reads about them makes them due again. A whole pass looks at everyone: the first one,
and whenever the enabled campaigns' audiences, the lapse model or the population prior
(refreshed once a day) changed since the last whole pass. Either way the set enrolled is
the one scoring everyone would enroll.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from reengage.audience import entry_day, next_look
from reengage.campaigns import Campaign, ExitReason
from reengage.detect import Assessment, Population, assess
from reengage.lapse_model import LapseModel
from reengage.logs import get_logger
from reengage.scoring import current_model, sampled_population
from reengage.store import Store
from reengage.store.looks import NEVER, Chunk, PassState
from reengage.store.sending import NewEnrollment

log = get_logger(__name__)

CHUNK = 5000  # customers decided together: memory stays bounded whatever the base
POPULATION_EVERY = timedelta(days=1)  # how often the population's typical gaps are refitted
# Enrollments that ended this long before the last pass are looked for again: an ending
# written with a clock a little behind the pass's (a send's own moment) is not missed.
ENDED_OVERLAP = timedelta(hours=1)
LIST_FACTS = {"tags", "interests"}  # audience facts read from JSON list columns


@dataclass
class EnrollReport:
    """What a detection pass did."""

    entered: Counter[str] = field(default_factory=Counter)
    held_out: Counter[str] = field(default_factory=Counter)
    exited: int = 0
    skipped: str | None = None  # why no pass ran (another worker's ran this tick)
    looked_at: int = 0  # customers decided about (everyone in a whole pass)
    whole: bool = False


def detect_and_enroll(
    store: Store, campaigns: list[Campaign], now: datetime, *, whole: bool = False
) -> EnrollReport:
    """Enroll everyone who meets an enabled campaign's audience today.

    Skips customers without consent, marked do-not-contact, suppressed or paused, already
    in a campaign that does not run in parallel, or enrolled in this campaign within its
    ``not_enrolled_within_days``. Higher-priority campaigns choose first. Holdout members
    are recorded, never contacted. Enrollments whose customer came back are ended first.
    ``whole`` looks at every customer whatever is due (what the looks must always agree with).
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
    state = store.detection.pass_state()
    if state is not None and now - state.population_at < POPULATION_EVERY:
        population, population_at = Population.from_pairs(state.population), state.population_at
    else:
        population, population_at = sampled_population(store), now
    fingerprint = _fingerprint(active, model, population)
    report.whole = (
        whole or state is None or state.fingerprint != fingerprint or now < state.updated_at
    )
    if not report.whole and state is not None:
        store.detection.look_again(store.detection.ended_since(state.updated_at - ENDED_OVERLAP))
    after = 0
    due_at = None if report.whole else now
    while (
        chunk := store.detection.next_chunk(after=after, limit=CHUNK, due_at=due_at)
    ) is not None:
        after = chunk.last
        _decide(store, active, chunk, population, model, now, report)
    pairs = population.pairs()
    store.detection.save_pass_state(PassState(fingerprint, pairs, population_at, now))
    log.info(
        "enrollment_pass",
        entered=dict(report.entered),
        held_out=dict(report.held_out),
        exited=report.exited,
        looked_at=report.looked_at,
        whole=report.whole,
    )
    return report


def _decide(
    store: Store,
    active: list[Campaign],
    chunk: Chunk,
    population: Population,
    model: LapseModel,
    now: datetime,
    report: EnrollReport,
) -> None:
    """Enroll whom of the chunk a campaign takes now; write when to look at each again.

    Every read selects the chunk's id range (and, between whole passes, who is due), so
    the database gets the same few statements whatever the chunk holds. The look versions
    came with the chunk, before the data: a change that lands meanwhile wins."""
    versions = chunk.versions
    read: set[int] = set()  # whose profile was read (a customer deleted meanwhile is not)
    assessments: dict[int, Assessment] = {}
    for p in store.detection.profiles(chunk=chunk):
        read.add(p.customer_id)
        if (a := assess(p, population, now, model)) is not None:
            assessments[p.customer_id] = a
    # A pause is weighed below: it ends by itself, and the next look waits for it. The
    # list columns are read only when a filter needs them (JSON, decoded row by row).
    lists = any(f.field in LIST_FACTS for c in active if c.audience for f in c.audience.where)
    mailable = store.customers.contactable(chunk, now, whatever_their_pause=True, lists=lists)
    longest = max(c.not_enrolled_within_days for c in active)
    running: dict[int, set[str]] = defaultdict(set)  # campaigns each customer is in now
    recent: dict[int, dict[str, datetime]] = defaultdict(dict)
    for cid, campaign_id, status, enrolled_at in store.detection.enrollment_history(
        chunk, now - timedelta(days=longest)
    ):
        if status in ("active", "attention"):
            running[cid].add(campaign_id)
        last = recent[cid].get(campaign_id)
        recent[cid][campaign_id] = enrolled_at if last is None else max(last, enrolled_at)
    new: list[NewEnrollment] = []
    looks: list[tuple[int, int, datetime | None]] = []
    for cid in chunk.ids:
        if cid not in read:
            continue
        a = assessments.get(cid)
        if a is None:  # nothing done yet: an activity will make them due
            looks.append((cid, versions.get(cid, 0), NEVER))
            continue
        info = mailable.get(cid)
        paused = info.get("paused_until") if info is not None else None
        if info is not None and (paused is None or paused <= now):
            for campaign in active:
                cutoff = now - timedelta(days=campaign.not_enrolled_within_days)
                last = recent[cid].get(campaign.id)
                if last is not None and last >= cutoff:
                    continue
                if campaign.id in running[cid]:  # never twice at once
                    continue
                if running[cid] and not campaign.allow_parallel:
                    continue
                if entry_day(campaign, a, info, 1, model) != 0.0:
                    continue
                first = campaign.steps[0]
                holdout = campaign.in_holdout(a.customer_id)
                new.append(NewEnrollment(cid, campaign.id, holdout, first.key, now + first.after))
                recent[cid][campaign.id] = now
                if holdout:
                    report.held_out[campaign.id] += 1
                else:
                    report.entered[campaign.id] += 1
                    running[cid].add(campaign.id)
        when = next_look(active, a, info, running=running[cid], recent=recent[cid], now=now)
        looks.append((cid, versions.get(cid, 0), when or NEVER))
    report.looked_at += len(chunk.versions)
    store.sending.enroll(new, now)
    store.detection.write_looks(looks)


def _fingerprint(active: list[Campaign], model: LapseModel, population: Population) -> str:
    """What the looks were computed with: who may enter which campaign, and the score."""
    what = {
        "campaigns": [
            c.model_dump(
                mode="json",
                include={
                    "id",
                    "priority",
                    "audience",
                    "not_enrolled_within_days",
                    "allow_parallel",
                },
            )
            for c in active
        ],
        "model": [model.horizon_days, model.weights, str(model.fitted_as_of)],
        "population": population.pairs(),
    }
    text = json.dumps(what, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()
