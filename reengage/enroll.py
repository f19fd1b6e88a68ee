"""The detection pass: who meets a campaign's audience today is enrolled, once.

``detect_and_enroll`` takes ``now`` and reads everything it decides on from the store; the
scheduler runs it in a thread, off the event loop. It looks only at the customers who are
due (``customer_stats.look_again_at``, see :mod:`reengage.store.looks`), in chunks: after
deciding about a customer it writes the earliest moment they could enter a campaign as
their record stands (:func:`reengage.audience.next_look`), and anything that changes what
it reads about them makes them due again. A whole pass looks at everyone: the first one,
and whenever the enabled campaigns' audiences, the lapse model or the population prior
(refreshed once a day) changed since the last whole pass. The rhythm horizon (the lapse
score's before any model is fitted) is chosen with the population and kept with it, in the
pass and its state: a pass a minute later answers for the same horizon, whatever new
customers did to the sample it was read from. Either way the set enrolled is
the one scoring everyone would enroll. Several workers share a pass, each taking the next
chunk under a lease (:mod:`reengage.store.passes`); each chunk is decided as of the pass's
moment and written with its chunk, so the set enrolled is the same however it was shared.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from reengage.audience import entry_day, next_look
from reengage.campaigns import Campaign, ExitReason
from reengage.detect import Assessment, Population, assess
from reengage.horizon import HorizonChoice
from reengage.lapse_model import LapseModel
from reengage.logs import get_logger
from reengage.models import EnrollmentStatus
from reengage.scoring import rhythm_horizon, sampled_horizon, sampled_population
from reengage.store import Store
from reengage.store.looks import NEVER, Chunk, PassState
from reengage.store.passes import SharedPass, Taken
from reengage.store.sending import NewEnrollment
from reengage.uplift import with_min_uplift

log = get_logger(__name__)

CHUNK = 5000  # customers decided together: memory stays bounded whatever the base
POPULATION_EVERY = timedelta(days=1)  # how often the population's typical gaps are refitted
# Enrollments that ended this long before the last pass are looked for again: an ending
# written with a clock a little behind the pass's (a send's own moment) is not missed.
ENDED_OVERLAP = timedelta(hours=1)
# How long a worker holds a chunk of a shared pass; each part it writes renews it. A dead
# worker's chunk is taken again by another after this.
CHUNK_LEASE = timedelta(minutes=2)
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
    store: Store,
    campaigns: list[Campaign],
    now: datetime,
    *,
    whole: bool = False,
    worker: str = "this process",
    start: bool = True,
    lease: timedelta = CHUNK_LEASE,
    clock: Callable[[], datetime] | None = None,
) -> EnrollReport:
    """Enroll everyone who meets an enabled campaign's audience today.

    Skips customers without consent, marked do-not-contact, suppressed or paused, already
    in a campaign that does not run in parallel, or enrolled in this campaign within its
    ``not_enrolled_within_days``, or of a segment the campaign's ``min_uplift`` leaves out
    (:func:`reengage.uplift.with_min_uplift`). Higher-priority campaigns choose first.
    Holdout members are recorded, never contacted: a customer held out by any campaign
    enters none while that holdout's attribution window runs (``store.attribution_window``).
    Enrollments whose customer came back are ended first.
    ``whole`` looks at every customer whatever is due (what the looks must always agree with).

    Several workers share a pass (:mod:`reengage.store.passes`): this one joins the pass
    under way if it decides with the same campaigns, model and population, else (``start``)
    begins one as of ``now``; either way it takes chunks, leased for ``lease`` on
    ``clock`` (the time as the chunks are taken; ``now`` when None) and decided as of the
    pass's moment, until none is left. ``start=False`` only joins a pass under way.
    """
    clock = clock or (lambda: now)
    report = EnrollReport()
    active = sorted(
        (c for c in campaigns if c.enabled and c.audience is not None), key=lambda c: -c.priority
    )
    # min_uplift as a filter on the segment, measured once for the pass: it joins the
    # fingerprint, so a segment crossing the bar makes the next pass whole.
    active = with_min_uplift(store, active, now)
    fitted = store.detection.latest_lapse_model()
    window = store.attribution_window
    # Enrollments whose customer came back end first, chunk by chunk: whoever did something
    # since their last look is due, so each pass checks just the customers it decides.
    exits = sorted(
        c.id for c in campaigns if {ExitReason.ACTIVITY, ExitReason.PURCHASE} & set(c.exit_on)
    )
    shared = store.detection.running_pass()
    if shared is not None:
        model = fitted or _prior_model(store, shared.horizon)
        pairs = Population.from_pairs(shared.population)
        same = _fingerprint(active, exits, model, pairs, window)
        if same != shared.fingerprint or (whole and not shared.whole):
            if not start:
                report.skipped = "a detection pass with other campaigns or model is under way"
                return report
            store.detection.abandon_pass(shared.id, now)
            log.info("detection_pass_abandoned", pass_id=shared.id)
            shared = None
    if shared is None:
        if not start:
            report.skipped = "no detection pass is under way (another worker starts the next)"
            return report
        if not active:
            report.exited = store.sending.exit_on_activity(exits, now)
            return report
        shared = _start(store, active, exits, fitted, now, whole)
    model = fitted or _prior_model(store, shared.horizon)
    report.whole = shared.whole
    population = Population.from_pairs(shared.population)
    while (taken := store.detection.take_chunk(shared, worker, clock(), lease, CHUNK)) is not None:
        if not _decide_taken(
            store, active, exits, shared, taken, population, model, worker, lease, clock, report
        ):
            log.warning("detection_chunk_lost", after=taken.after, last=taken.last)
    finished = store.detection.finish_pass(shared, clock())
    log.info(
        "enrollment_pass",
        entered=dict(report.entered),
        held_out=dict(report.held_out),
        exited=report.exited,
        looked_at=report.looked_at,
        whole=report.whole,
        finished=finished,
    )
    return report


def _prior_model(store: Store, horizon: HorizonChoice | None) -> LapseModel:
    """The rhythm prior at the horizon a pass keeps (one started before horizons were kept:
    the store's)."""
    return LapseModel((horizon or rhythm_horizon(store)).days)


def _start(
    store: Store,
    active: list[Campaign],
    exits: list[str],
    fitted: LapseModel | None,
    now: datetime,
    whole: bool,
) -> SharedPass:
    """Begin a pass as of ``now``: whole when asked, on the first pass, or when what the
    looks were computed with changed; else only who is due (and whoever's enrollment ended
    since the last pass is due again first). The population and the rhythm horizon are the
    last pass's while a day old at most, else refitted now from samples."""
    state = store.detection.pass_state()
    if state is not None and now - state.population_at < POPULATION_EVERY:
        population, population_at = Population.from_pairs(state.population), state.population_at
        horizon = state.horizon or sampled_horizon(store)  # kept from now on
    else:
        population, population_at = sampled_population(store), now
        horizon = sampled_horizon(store)
    model = fitted or LapseModel(horizon.days)
    fingerprint = _fingerprint(active, exits, model, population, store.attribution_window)
    whole = whole or state is None or state.fingerprint != fingerprint or now < state.updated_at
    if not whole and state is not None:
        store.detection.look_again(store.detection.ended_since(state.updated_at - ENDED_OVERLAP))
    wanted = PassState(fingerprint, population.pairs(), population_at, now, horizon)
    return store.detection.start_pass(now, whole, wanted)


def _decide_taken(
    store: Store,
    active: list[Campaign],
    exits: list[str],
    shared: SharedPass,
    taken: Taken,
    population: Population,
    model: LapseModel,
    worker: str,
    lease: timedelta,
    clock: Callable[[], datetime],
    report: EnrollReport,
) -> bool:
    """Decide a chunk this worker holds, ``CHUNK`` customers at a time (a retaken chunk of
    who is due may hold more by now), each part written only while the chunk is still
    this worker's. False if it was lost to another worker meanwhile."""
    part = taken.first
    due_at = None if shared.whole else shared.now
    while True:
        if part is None:
            return store.detection.commit_chunk(
                shared, taken, worker, clock(), lease, done=True, new=[], looked=[]
            )
        report.exited += store.sending.exit_on_activity(exits, shared.now, chunk=part)
        decided = _decide(store, active, part, population, model, shared.now)
        done = len(part.versions) < CHUNK or part.last >= taken.last
        if not store.detection.commit_chunk(
            shared, taken, worker, clock(), lease, done=done, new=decided.new, looked=decided.looks
        ):
            return False
        # An activity that landed as the chunk was read, dated after the pass's moment, may
        # belong to someone just enrolled as of that moment: their look was written over it.
        report.exited += store.sending.exit_on_activity(exits, shared.now, chunk=part)
        report.entered.update(decided.entered)
        report.held_out.update(decided.held_out)
        report.looked_at += len(part.versions)
        if done:
            return True
        part = store.detection.next_chunk(
            after=part.last, limit=CHUNK, due_at=due_at, upto=taken.last
        )


@dataclass
class _Decided:
    """What a chunk's decisions are, before they are written."""

    new: list[NewEnrollment] = field(default_factory=list)
    looks: list[tuple[int, int, datetime | None]] = field(default_factory=list)
    entered: Counter[str] = field(default_factory=Counter)
    held_out: Counter[str] = field(default_factory=Counter)


def _decide(
    store: Store,
    active: list[Campaign],
    chunk: Chunk,
    population: Population,
    model: LapseModel,
    now: datetime,
) -> _Decided:
    """Whom of the chunk a campaign takes now, and when to look at each again.

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
    window = store.attribution_window
    longest = max(timedelta(days=max(c.not_enrolled_within_days for c in active)), window)
    running: dict[int, set[str]] = defaultdict(set)  # campaigns each customer is in now
    recent: dict[int, dict[str, datetime]] = defaultdict(dict)
    # Until when each customer is someone's holdout member: no campaign contacts them
    # before, so that the holdout shows what happens without contact.
    held: dict[int, datetime] = {}
    for cid, campaign_id, status, enrolled_at in store.detection.enrollment_history(
        chunk, now - longest
    ):
        if status in ("active", "attention"):
            running[cid].add(campaign_id)
        elif status == EnrollmentStatus.HOLDOUT:
            held[cid] = max(held.get(cid, enrolled_at + window), enrolled_at + window)
        last = recent[cid].get(campaign_id)
        recent[cid][campaign_id] = enrolled_at if last is None else max(last, enrolled_at)
    decided = _Decided()
    new, looks = decided.new, decided.looks
    for cid in chunk.ids:
        if cid not in read:
            continue
        a = assessments.get(cid)
        if a is None:  # nothing done yet: an activity will make them due
            looks.append((cid, versions.get(cid, 0), NEVER))
            continue
        info = mailable.get(cid)
        paused = info.get("paused_until") if info is not None else None
        free = cid not in held or held[cid] <= now
        if info is not None and (paused is None or paused <= now) and free:
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
                new.append(
                    NewEnrollment(
                        cid,
                        campaign.id,
                        holdout,
                        first.key,
                        now + first.after,
                        judged_activity_at=a.profile.last_activity_at,
                    )
                )
                recent[cid][campaign.id] = now
                if holdout:
                    decided.held_out[campaign.id] += 1
                    held[cid] = now + window
                    break  # held out: no other campaign takes them while its window runs
                decided.entered[campaign.id] += 1
                running[cid].add(campaign.id)
        when = next_look(
            active,
            a,
            info,
            running=running[cid],
            recent=recent[cid],
            now=now,
            model=model,
            held_until=held.get(cid),
        )
        looks.append((cid, versions.get(cid, 0), when or NEVER))
    return decided


def _fingerprint(
    active: list[Campaign],
    exits: list[str],
    model: LapseModel,
    population: Population,
    window: timedelta,
) -> str:
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
        "exits": exits,  # a campaign newly ending on activity: everyone is checked once
        "model": [model.horizon_days, model.weights, str(model.fitted_as_of)],
        "population": population.pairs(),
        # how long a holdout member stays out of every campaign: a change moves their looks
        "holdout_window": window.total_seconds(),
    }
    text = json.dumps(what, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()
