"""The replay: an event queue of entries and steps, run in time order under the daemon's own
rules (audience, window, cap, step conditions), with each customer's state (busy, recently
enrolled, capped)."""

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
from reengage.compose import Workspace
from reengage.detect import Assessment
from reengage.i18n import days
from reengage.lapse_model import LapseModel
from reengage.models import NO_SEGMENT, EnrollmentStatus
from reengage.sendtimes import FrequencyCap, condition_met, next_send_time, window_zone
from reengage.simulate.plan import PlannedEntry, PlannedMail, Simulation
from reengage.store.sending import Running
from reengage.workdays import WorkingDays

DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A customer who may enter a campaign, queued for the first day they meet its audience."""

    customer_id: int
    campaign: Campaign
    rank: int  # by priority: lower chooses first on the same day
    again: bool = False  # a re-entry after an enrollment during the plan


@dataclass(slots=True)
class Run:
    """An enrollment being replayed: a real running one, or one the plan started."""

    customer_id: int
    customer: str
    campaign_id: str
    campaign: Campaign | None  # None: removed since; the daemon ends it when it falls due
    index: int
    zone: ZoneInfo
    responses: set[tuple[str | None, str]] = field(default_factory=set)
    reachable: bool = True


class Replay:
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
        window: timedelta,
    ) -> None:
        self.ws, self.plan, self.model, self.cap = ws, plan, model, cap
        self.days, self.only, self.info, self.window = days, only, info, window
        self.held: dict[int, datetime] = {}  # until when a customer is someone's holdout
        self.assessments: dict[int, Assessment] = {}
        self.locales: dict[int, str | None] = {cid: i.get("locale") for cid, i in info.items()}
        self.recent: dict[tuple[int, str], datetime] = {}
        self.busy: Counter[int] = Counter()
        self.parked: dict[int, list[Candidate]] = {}
        self.queue: list[tuple[datetime, int, int, int, Run | Candidate]] = []
        self.seq = 0
        self.incomplete = False  # a missing campaign may be a broken file: its runs wait
        # Where a campaign's call lands: the rep's list on their next working day.
        self.working_days = WorkingDays()
        self.rep_zones: dict[str, ZoneInfo] = {}
        # segments each campaign's min_uplift leaves out, as measured when the plan starts
        self.left_out: dict[str, tuple[str | None, ...]] = {}

    def shown(self, campaign_id: str) -> bool:
        """Whether the plan reports this campaign (all of them, or the ``only`` one)."""
        return self.only is None or campaign_id == self.only

    def skip(self, campaign: Campaign | None, why: str) -> None:
        """Count a customer left out of a campaign (or of all: ``None``) and why."""
        if campaign is None and self.only is None:
            self.plan.skipped[why] += 1
        elif campaign is not None and self.shown(campaign.id):
            self.plan.skipped[f"{campaign.id}: {why}"] += 1

    def hold(self, cid: int, held_at: datetime) -> None:
        """The customer entered a holdout at ``held_at``: no campaign takes them until the
        attribution window after it ends, as the daemon decides."""
        until = held_at + self.window
        self.held[cid] = max(until, self.held.get(cid, until))

    def push(self, when: datetime, event: Run | Candidate) -> None:
        """Queue an entry or a step at ``when``."""
        # Steps before entries at the same moment (an enrollment that ends frees its
        # customer first); entries by priority; then first come, first served.
        kind, rank = (1, event.rank) if isinstance(event, Candidate) else (0, 0)
        self.seq += 1
        heapq.heappush(self.queue, (when, kind, rank, self.seq, event))

    def propose(self, cand: Candidate, k: int) -> bool:
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
        run = Run(
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
            if isinstance(event, Run):
                self.step(event, when)
            else:
                self.enter(event, when)

    def enter(self, cand: Candidate, t: datetime) -> None:
        """Enter the customer as a detection pass at ``t`` would, or say why not yet."""
        cid, c = cand.customer_id, cand.campaign
        if self.busy[cid] and not c.allow_parallel:
            self.parked.setdefault(cid, []).append(cand)  # asked again when they are free
            return
        held = self.held.get(cid)
        if held is not None and held > t:
            k = math.ceil((held - self.plan.start) / DAY)
            if not self.propose(cand, k) and not cand.again:
                self.skip(c, "held out by a campaign until its attribution window ends")
            return
        last = self.recent.get((cid, c.id))
        within = timedelta(days=c.not_enrolled_within_days)
        if last is not None and last >= t - within:
            k = math.floor((last + within - self.plan.start) / DAY) + 1
            if not self.propose(cand, k) and not cand.again:
                self.skip(c, f"enrolled in it within the last {days(c.not_enrolled_within_days)}")
            return
        a = self.assessments[cid]
        left_out = self.left_out.get(c.id, ())
        if left_out and a.profile.segment in left_out:  # a segment does not change in a plan
            self.skip(c, _left_out(c, a.profile.segment))
            return
        self.recent[(cid, c.id)] = t
        held_out = c.in_holdout(a.customer_id)
        if self.shown(c.id):
            self.plan.entries.append(PlannedEntry(a.customer_id, c.id, t, held_out))
            day = self.plan.day(t)
            (day.held_out if held_out else day.entered)[c.id] += 1
            examples = self.plan.examples.setdefault(c.id, [])
            if not held_out and len(examples) < 3:
                examples.append(f"{a.customer_id} {a.profile.name}: {a.why}")
        if held_out:
            self.hold(cid, t)
        else:
            self.busy[cid] += 1
            zone = window_zone(c.send_window, self.info[cid].get("timezone"), self.ws.zone)
            self.push(t + c.steps[0].after, Run(cid, a.customer_id, c.id, c, 0, zone))
        k = math.floor((t + within - self.plan.start) / DAY) + 1
        self.propose(Candidate(cid, c, cand.rank, again=True), k)

    def step(self, run: Run, t: datetime) -> None:
        """Carry out the enrollment's next step at ``t`` as the dispatch pass would."""
        c = run.campaign
        if c is None and self.incomplete:
            # Its file or a template may only be broken: the daemon holds it until it loads.
            if self.only is None or run.campaign_id == self.only:
                self.plan.waiting[
                    f"{run.campaign_id} (it does not load: reengage validate says why)"
                ] += 1
            return  # the customer stays busy: nothing more happens in the plan
        if c is None or run.index < 0:
            self.finish(run, t, "campaign removed" if c is None else "step removed")
            return
        step = c.steps[run.index]
        if step.call is not None:
            if self.shown(c.id):
                seen = self.plan.on(self.call_day(run.customer_id, t))
                if seen is None:
                    self.plan.calls_after[c.id] += 1
                else:
                    seen.calls[c.id] += 1
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

    def call_day(self, cid: int, t: datetime) -> date:
        """The day a call falling due at ``t`` is on the rep's list: their local date, or
        the next working day after a day off, as the reps' lists place it."""
        rep = self.info.get(cid, {}).get("rep_external_id")
        zone = self.rep_zones.get(rep, self.ws.zone) if rep else self.ws.zone
        return self.working_days.next_working_day(t.astimezone(zone).date())

    def advance(self, run: Run, t: datetime) -> None:
        """Move the enrollment on to its next step, or end it after its last."""
        steps = run.campaign.steps if run.campaign else []
        if run.index + 1 >= len(steps):
            self.finish(run, t, "completed")
            return
        run.index += 1
        self.push(t + steps[run.index].after, run)

    def finish(self, run: Run, t: datetime, reason: str) -> None:
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


def _left_out(campaign: Campaign, segment: str | None) -> str:
    """Why a customer of ``campaign``'s audience does not enter: their segment is one its
    ``min_uplift`` leaves out (contact helped it less than the bar, as measured)."""
    assert campaign.audience is not None and campaign.audience.min_uplift is not None
    bar = campaign.audience.min_uplift
    name = repr(NO_SEGMENT if segment is None else segment)
    return f"segment {name} left out by min_uplift {bar:g} (contact helps them less)"
