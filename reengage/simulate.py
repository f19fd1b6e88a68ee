"""``reengage simulate``: replay the campaigns from ``now`` as the daemon would run them;
nothing is sent or written.

The replay starts where the database stands: enrollments still running carry on from their
next step (their mail is part of the plan), earlier enrollments hold customers back for each
campaign's ``not_enrolled_within_days``, mail sent in the last week counts against the
frequency cap, and paused customers wait for their pause to end. From there nobody responds
(see :data:`Simulation.assumptions`). Entry is the daemon's audience rule; sends go through
the daemon's window, cap and step conditions in time order, so the cap is counted exactly
as the daemon counts it. The plan is kept by calendar day in the business zone.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from reengage.audience import entry_day, score_on
from reengage.campaigns import Campaign
from reengage.compose import Workspace, render_for
from reengage.detect import Assessment, assess
from reengage.lapse_model import LapseModel
from reengage.models import EnrollmentStatus
from reengage.scoring import assess_all, current_model, prior_for
from reengage.sendtimes import FrequencyCap, condition_met, next_send_time, window_zone
from reengage.store import Store
from reengage.store.sending import Running

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
SAMPLE = 50  # customers rendered per mail step: ~2 ms each
CHUNK = 10_000


@dataclass
class DayPlan:
    """What would happen on one calendar day in the business zone."""

    day: date
    entered: Counter[str] = field(default_factory=Counter)
    held_out: Counter[str] = field(default_factory=Counter)
    mails: Counter[str] = field(default_factory=Counter)  # "campaign/step"
    calls: Counter[str] = field(default_factory=Counter)
    exits: Counter[str] = field(default_factory=Counter)  # "campaign: reason"

    @property
    def quiet(self) -> bool:
        """Nothing happens that day."""
        return not (self.entered or self.held_out or self.mails or self.calls or self.exits)


@dataclass(frozen=True, slots=True)
class PlannedMail:
    """One mail the plan sends: to whom, which step, when (UTC), read in which zone."""

    customer: str  # external id, as imported
    customer_id: int
    campaign_id: str
    step_key: str
    at: datetime
    zone: ZoneInfo  # where the send window's hours are read


@dataclass(frozen=True, slots=True)
class PlannedEntry:
    """A customer entering a campaign (or its holdout) during the plan."""

    customer: str
    campaign_id: str
    at: datetime
    held_out: bool


@dataclass
class Simulation:
    """A plan by local day, the mails and entries in it, who is left out and why, and what it
    assumes."""

    start: datetime
    end: datetime
    zone: ZoneInfo  # the business zone: ``days`` are its calendar dates
    days: list[DayPlan]
    mails: list[PlannedMail] = field(default_factory=list)
    entries: list[PlannedEntry] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # why someone never entered
    not_sent: Counter[str] = field(default_factory=Counter)  # "campaign/step: why"
    running: Counter[str] = field(default_factory=Counter)  # enrollments carried on
    waiting: Counter[str] = field(default_factory=Counter)  # held for a person: no mail
    examples: dict[str, list[str]] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    rendered: int = 0
    render_failures: list[str] = field(default_factory=list)

    @classmethod
    def covering(cls, start: datetime, end: datetime, zone: ZoneInfo) -> Simulation:
        """An empty plan with one day for every local date from ``start`` to ``end``."""
        first = start.astimezone(zone).date()
        last = (end - timedelta(microseconds=1)).astimezone(zone).date()
        count = (last - first).days + 1
        return cls(start, end, zone, [DayPlan(first + timedelta(days=d)) for d in range(count)])

    def day(self, when: datetime) -> DayPlan:
        """The local day ``when`` (any moment in the plan) falls on."""
        return self.days[(when.astimezone(self.zone).date() - self.days[0].day).days]


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
) -> Simulation:
    """Replay ``campaigns`` from ``now`` for ``days`` days. Nothing is sent or written.

    Every campaign given competes for customers and shares the cap; with ``only``, just that
    campaign's part is reported. Up to ``sample`` planned customers per mail step are
    rendered, and each failure is reported with the customer and the reason. With
    ``incomplete`` (some campaign file does not load), a running enrollment whose campaign
    is missing waits for the fix, as the daemon makes it wait, instead of ending.
    """
    end = now + timedelta(days=days)
    model = current_model(store)
    _, assessments = assess_all(store, now, model=model)
    ids = [a.profile.customer_id for a in assessments]
    free_now = store.contactable(ids, now)
    info = store.contactable(ids, end - timedelta(microseconds=1))
    paused = store.customers_by_ids(set(info) - set(free_now))
    running = store.running_enrollments()
    entering = sorted(
        (c for c in campaigns if c.enabled and c.audience is not None), key=lambda c: -c.priority
    )
    longest = max((c.not_enrolled_within_days for c in entering), default=0)
    history = store.enrollment_history(sorted(info), now - timedelta(days=longest))
    cap = FrequencyCap(ws.max_emails_per_week, WEEK)
    if ws.max_emails_per_week:
        for chunk in _chunks(sorted(set(info) | {r.customer_id for r in running})):
            for cid, sent in store.sent_since_many(chunk, now - WEEK).items():
                for at in sorted(sent):
                    cap.record(cid, at)
    plan = Simulation.covering(now, end, ws.zone)
    replay = _Replay(ws, plan, model, cap, days, only, info)
    replay.incomplete = incomplete
    replay.assessments = {a.profile.customer_id: a for a in assessments}
    for cid, campaign_id, _, enrolled_at in history:
        key = (cid, campaign_id)
        replay.recent[key] = max(enrolled_at, replay.recent.get(key, enrolled_at))
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
                not replay.propose(_Candidate(cid, campaign, rank), first)
                and pause is not None
                and entry_day(campaign, a, info[cid], days, model) is not None
            ):
                replay.skip(campaign, "paused (at their request) while in its audience")
    replay.run()
    for cands in replay.parked.values():
        for cand in cands:
            if not cand.again:
                replay.skip(cand.campaign, "still in another campaign when the plan ends")
    plan.assumptions = _assumptions(ws, [c for c in campaigns if replay.shown(c.id)], sample)
    _render_sample(ws, store, plan, by_id, replay.locales, sample)
    return plan


@dataclass(frozen=True, slots=True)
class _Candidate:
    customer_id: int
    campaign: Campaign
    rank: int  # by priority: lower chooses first on the same day
    again: bool = False  # a re-entry after an enrollment during the plan


@dataclass(slots=True)
class _Run:
    """An enrollment being replayed: a real running one, or one the plan started."""

    customer_id: int
    customer: str
    campaign_id: str
    campaign: Campaign | None  # None: removed since; the daemon ends it when it falls due
    index: int
    zone: ZoneInfo
    responses: set[tuple[str | None, str]] = field(default_factory=set)
    reachable: bool = True


class _Replay:
    """The event queue and each customer's state: busy, recently enrolled, capped."""

    def __init__(
        self,
        ws: Workspace,
        plan: Simulation,
        model: LapseModel,
        cap: FrequencyCap,
        days: int,
        only: str | None,
        info: dict[int, dict[str, Any]],
    ) -> None:
        self.ws, self.plan, self.model, self.cap = ws, plan, model, cap
        self.days, self.only, self.info = days, only, info
        self.assessments: dict[int, Assessment] = {}
        self.locales: dict[int, str | None] = {cid: i.get("locale") for cid, i in info.items()}
        self.recent: dict[tuple[int, str], datetime] = {}
        self.busy: Counter[int] = Counter()
        self.parked: dict[int, list[_Candidate]] = {}
        self.queue: list[tuple[datetime, int, int, int, _Run | _Candidate]] = []
        self.seq = 0
        self.incomplete = False  # a missing campaign may be a broken file: its runs wait

    def shown(self, campaign_id: str) -> bool:
        return self.only is None or campaign_id == self.only

    def skip(self, campaign: Campaign | None, why: str) -> None:
        if campaign is None and self.only is None:
            self.plan.skipped[why] += 1
        elif campaign is not None and self.shown(campaign.id):
            self.plan.skipped[f"{campaign.id}: {why}"] += 1

    def push(self, when: datetime, event: _Run | _Candidate) -> None:
        # Steps before entries at the same moment (an enrollment that ends frees its
        # customer first); entries by priority; then first come, first served.
        kind, rank = (1, event.rank) if isinstance(event, _Candidate) else (0, 0)
        self.seq += 1
        heapq.heappush(self.queue, (when, kind, rank, self.seq, event))

    def propose(self, cand: _Candidate, k: int) -> bool:
        """Queue the customer's entry on the first day from day ``k`` they meet the audience."""
        if k >= self.days:
            return False
        a = self.assessments[cand.customer_id]
        if k:  # nobody buys: the same customer, k days more silent and older
            silent = a.days_silent + k
            a = replace(
                a,
                days_silent=silent,
                age_days=a.age_days + k,
                lapse_ratio=silent / a.expected_gap_days,
                lapse_score=score_on(a, k, self.model),
            )
        day = entry_day(cand.campaign, a, self.info[cand.customer_id], self.days - k, self.model)
        if day is None:
            return False
        self.push(self.plan.start + timedelta(days=k + day), cand)
        return True

    def carry_on(
        self, r: Running, campaign: Campaign | None, responses: set[tuple[str | None, str]]
    ) -> None:
        """Take a real running enrollment into the replay from its next step."""
        self.busy[r.customer_id] += 1
        self.locales[r.customer_id] = r.locale
        if r.status != EnrollmentStatus.ACTIVE:  # held for a person: busy, sends nothing
            if self.shown(r.campaign_id):
                self.plan.waiting[r.campaign_id] += 1
            return
        if self.shown(r.campaign_id):
            self.plan.running[r.campaign_id] += 1
        step = campaign.step(r.next_step_key) if campaign and r.next_step_key else None
        zone = self.ws.zone
        if campaign is not None:
            zone = window_zone(campaign.send_window, r.timezone, self.ws.zone)
        index = campaign.steps.index(step) if campaign and step else -1  # -1: step removed
        run = _Run(
            r.customer_id,
            r.external_id,
            r.campaign_id,
            campaign,
            index,
            zone,
            responses,
            r.reachable,
        )
        due = r.next_due_at or self.plan.start
        self.push(max(due, self.plan.start), run)

    def run(self) -> None:
        """Replay every event before the end of the plan, in time order."""
        while self.queue and self.queue[0][0] < self.plan.end:
            when, _, _, _, event = heapq.heappop(self.queue)
            if isinstance(event, _Run):
                self.step(event, when)
            else:
                self.enter(event, when)

    def enter(self, cand: _Candidate, t: datetime) -> None:
        """Enter the customer as a detection pass at ``t`` would, or say why not yet."""
        cid, c = cand.customer_id, cand.campaign
        if self.busy[cid] and not c.allow_parallel:
            self.parked.setdefault(cid, []).append(cand)  # asked again when they are free
            return
        last = self.recent.get((cid, c.id))
        within = timedelta(days=c.not_enrolled_within_days)
        if last is not None and last >= t - within:
            k = math.floor((last + within - self.plan.start) / DAY) + 1
            if not self.propose(cand, k) and not cand.again:
                self.skip(c, f"enrolled in it within the last {c.not_enrolled_within_days} days")
            return
        self.recent[(cid, c.id)] = t
        a = self.assessments[cid]
        held_out = c.in_holdout(a.customer_id)
        if self.shown(c.id):
            self.plan.entries.append(PlannedEntry(a.customer_id, c.id, t, held_out))
            day = self.plan.day(t)
            (day.held_out if held_out else day.entered)[c.id] += 1
            examples = self.plan.examples.setdefault(c.id, [])
            if not held_out and len(examples) < 3:
                examples.append(f"{a.customer_id} {a.profile.name}: {a.why}")
        if not held_out:
            self.busy[cid] += 1
            zone = window_zone(c.send_window, self.info[cid].get("timezone"), self.ws.zone)
            self.push(t + c.steps[0].after, _Run(cid, a.customer_id, c.id, c, 0, zone))
        k = math.floor((t + within - self.plan.start) / DAY) + 1
        self.propose(_Candidate(cid, c, cand.rank, again=True), k)

    def step(self, run: _Run, t: datetime) -> None:
        """Carry out the enrollment's next step at ``t`` as the dispatch pass would."""
        c = run.campaign
        if c is None and self.incomplete:
            # Its file may only be broken: the daemon holds the sequence until it loads.
            if self.only is None or run.campaign_id == self.only:
                self.plan.waiting[f"{run.campaign_id} (its file does not load)"] += 1
            return  # the customer stays busy: nothing more happens in the plan
        if c is None or run.index < 0:
            self.finish(run, t, "campaign removed" if c is None else "step removed")
            return
        step = c.steps[run.index]
        if step.call is not None:
            if self.shown(c.id):
                self.plan.day(t).calls[c.id] += 1
            self.advance(run, t)
            return
        if not run.reachable:
            self.finish(run, t, "no longer contactable")
            return
        # The daemon's own rule, so the plan cannot disagree with it; nobody responds to
        # mail planned here, so only a running enrollment's real responses count.
        if step.condition is not None and not condition_met(
            step.condition, c, run.index, run.responses
        ):
            if self.shown(c.id):
                self.plan.not_sent[f"{c.id}/{step.key}: condition {step.condition} not met"] += 1
            self.advance(run, t)
            return
        opens = next_send_time(c.send_window, run.zone, t)
        if opens > t:
            self.push(opens, run)
            return
        allowed = self.cap.next_allowed(run.customer_id, t)
        if allowed > t:
            self.push(next_send_time(c.send_window, run.zone, allowed), run)
            return
        self.cap.record(run.customer_id, t)
        if self.shown(c.id):
            self.plan.day(t).mails[f"{c.id}/{step.key}"] += 1
            self.plan.mails.append(
                PlannedMail(run.customer, run.customer_id, c.id, step.key, t, run.zone)
            )
        self.advance(run, t)

    def advance(self, run: _Run, t: datetime) -> None:
        steps = run.campaign.steps if run.campaign else []
        if run.index + 1 >= len(steps):
            self.finish(run, t, "completed")
            return
        run.index += 1
        self.push(t + steps[run.index].after, run)

    def finish(self, run: _Run, t: datetime, reason: str) -> None:
        """The enrollment ends at ``t``; a customer now free is asked again by what waited."""
        if self.shown(run.campaign_id):
            self.plan.day(t).exits[f"{run.campaign_id}: {reason}"] += 1
        self.busy[run.customer_id] -= 1
        if self.busy[run.customer_id] == 0:
            k = math.ceil((t - self.plan.start) / DAY)
            for cand in self.parked.pop(run.customer_id, []):
                if self.propose(cand, k) or cand.again:
                    continue
                self.skip(
                    cand.campaign,
                    "still in another campaign when the plan ends"
                    if k >= self.days
                    else "in another campaign until they left its audience",
                )


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]


def _assumptions(ws: Workspace, campaigns: list[Campaign], sample: int) -> list[str]:
    """What the plan takes for granted, in words for the marketer reading it."""
    lines = [
        "Nobody buys, opens, clicks, replies, unsubscribes or bounces, and no rep records a "
        "call outcome: every enrollment runs to its last step.",
        "Customers are judged as they stand now, one day more silent each day; each enters on "
        "the first day they meet a campaign's audience (checked every 24 hours from the "
        "plan's start), higher-priority campaigns choosing first.",
        "Enrollments already running carry on from their next step and their mail is in the "
        "plan; their customers enter no other campaign (unless it runs in parallel) until they "
        "finish. An enrollment held for a person (a send whose outcome is unknown) keeps its "
        "customer for the whole plan and sends nothing.",
        "Nobody enters a campaign within its not_enrolled_within_days of their last "
        "enrollment in it (before or during the plan); paused customers enter nothing before "
        "their pause ends; customers without consent, marked do-not-contact or suppressed "
        "never enter.",
    ]
    # What the daemon's rule says of each condition when nobody has responded to anything.
    judged = {
        s.condition: condition_met(s.condition, c, i, set())
        for c in campaigns
        for i, s in enumerate(c.steps)
        if s.condition is not None
    }
    if judged:
        holds = ", ".join(sorted(str(k) for k, met in judged.items() if met))
        fails = ", ".join(sorted(str(k) for k, met in judged.items() if not met))
        said = [f"{holds} holds (the step is sent)"] if holds else []
        said += [f"{fails} does not (the step is skipped)"] if fails else []
        lines.append(
            f"Step conditions: as nobody opens, clicks or replies, {'; '.join(said)}. A running "
            "enrollment's condition is judged on what its customer really did."
        )
    if no_audience := sorted(c.id for c in campaigns if c.audience is None):
        lines.append(
            f"{', '.join(no_audience)}: entered only from a rep's call outcome, so nobody new "
            "enters it here; enrollments already in it still send."
        )
    if disabled := sorted(c.id for c in campaigns if not c.enabled and c.audience is not None):
        lines.append(
            f"{', '.join(disabled)}: disabled, so nobody new enters it; enrollments already "
            "in it still send."
        )
    cap = (
        f"the frequency cap of {ws.max_emails_per_week} mails a customer in any 7 days (mail "
        "sent in the last 7 days counts)"
        if ws.max_emails_per_week
        else "no frequency cap (none is set)"
    )
    lines.append(
        f"Mail goes at the first moment its send window is open (in the recipient's zone "
        f"unless the campaign names one), under {cap}. Dates are calendar days in {ws.zone}."
    )
    if sample:
        lines.append(
            f"Each mail step was rendered for up to {sample} of its planned customers, spread "
            "across them and every language among them included; the rest were not rendered."
        )
    return lines


def _render_sample(
    ws: Workspace,
    store: Store,
    plan: Simulation,
    campaigns: dict[str, Campaign],
    locales: dict[int, str | None],
    sample: int,
) -> None:
    """Render each mail step for a bounded, deterministic sample of its planned customers,
    as the daemon would at the send moment (their rhythm as of then: nobody bought)."""
    if sample <= 0:
        return
    firsts: dict[tuple[str, str], dict[int, PlannedMail]] = {}
    for mail in plan.mails:
        firsts.setdefault((mail.campaign_id, mail.step_key), {}).setdefault(mail.customer_id, mail)
    chosen = {
        key: _spread(sorted(mails.values(), key=lambda m: m.customer_id), locales, sample)
        for key, mails in sorted(firsts.items())
    }
    customers = store.customers_by_ids(m.customer_id for ms in chosen.values() for m in ms)
    reps = store.rep_names(c.rep_external_id for c in customers.values() if c.rep_external_id)
    profiles = {p.customer_id: p for p in store.profiles(customer_ids=sorted(customers))}
    population, model = prior_for(store)
    for (campaign_id, step_key), mails in chosen.items():
        for mail in mails:
            customer = customers.get(mail.customer_id)
            if customer is None:
                continue
            profile = profiles.get(mail.customer_id)
            plan.rendered += 1
            try:
                render_for(
                    ws,
                    campaigns[campaign_id],
                    step_key,
                    customer,
                    assess(profile, population, mail.at, model) if profile else None,
                    message_key="simulate",
                    now=mail.at,
                    rep_name=reps.get(customer.rep_external_id or ""),
                )
            except Exception as exc:  # any failure at all is what the marketer must see
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
                plan.render_failures.append(
                    f"would fail for {mail.customer} ({campaign_id}/{step_key}): {reason}"
                )


def _spread(mails: list[PlannedMail], locales: dict[int, str | None], n: int) -> list[PlannedMail]:
    """Up to ``n`` of ``mails``: one of each language first, then evenly across the list."""
    picked: dict[int, PlannedMail] = {}
    seen: set[str | None] = set()
    for mail in mails:
        locale = locales.get(mail.customer_id)
        if locale not in seen:
            seen.add(locale)
            picked.setdefault(mail.customer_id, mail)
    for i in range(min(n, len(mails))):
        mail = mails[i * len(mails) // min(n, len(mails))]
        picked.setdefault(mail.customer_id, mail)
    return list(picked.values())[:n]
