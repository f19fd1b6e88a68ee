"""``reengage simulate``: replay the campaigns day by day from ``now``; nothing is sent or
written."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from reengage.audience import entry_day
from reengage.campaigns import Campaign
from reengage.compose import Workspace
from reengage.detect import Assessment
from reengage.scoring import assess_all, current_model
from reengage.sequence import FrequencyCap, next_send_time, window_zone
from reengage.store import Store


@dataclass
class DayPlan:
    """What would happen on one day."""

    day: date
    entered: Counter[str] = field(default_factory=Counter)
    held_out: Counter[str] = field(default_factory=Counter)
    mails: Counter[str] = field(default_factory=Counter)  # "campaign/step"
    calls: Counter[str] = field(default_factory=Counter)
    exits: Counter[str] = field(default_factory=Counter)  # "campaign: reason"

    @property
    def quiet(self) -> bool:
        return not (self.entered or self.held_out or self.mails or self.calls or self.exits)


@dataclass
class Simulation:
    """A day-by-day plan, and who is skipped and why."""

    start: datetime
    days: list[DayPlan]
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)


def simulate(
    ws: Workspace,
    store: Store,
    campaigns: list[Campaign],
    *,
    now: datetime,
    days: int,
) -> Simulation:
    """Replay ``campaigns`` from ``now`` for ``days`` days. Nothing is sent or written.

    Customers are judged as they stand now, growing more silent each day (nobody buys in
    a simulation). Each enters on the first day they meet an audience, unless held out,
    without consent, marked do-not-contact, or already in a campaign that does not run in
    parallel (higher priority campaigns choose first). Steps are scheduled into the send
    window in the recipient's time zone and under the frequency cap.
    """
    model = current_model(store)
    _, assessments = assess_all(store, now, model=model)
    customers = store.contactable(a.profile.customer_id for a in assessments)
    plan = Simulation(now, [DayPlan(now.date() + timedelta(days=d)) for d in range(days)])
    cap = FrequencyCap(ws.max_emails_per_week, timedelta(days=7))
    busy_until: dict[int, datetime] = {}
    end = now + timedelta(days=days)
    ordered = sorted(
        (c for c in campaigns if c.enabled and c.audience is not None), key=lambda c: -c.priority
    )
    entries: list[tuple[float, int, Campaign, Assessment]] = []
    for a in assessments:
        info = customers.get(a.profile.customer_id)
        if info is None:
            plan.skipped["never contacted: do not contact, no consent or unknown"] += 1
            continue
        for rank, campaign in enumerate(ordered):
            day = entry_day(campaign, a, info, days, model)
            if day is not None:
                entries.append((day, rank, campaign, a))
    entries.sort(key=lambda e: (e[0], e[1]))
    for day, _, campaign, a in entries:
        cid = a.profile.customer_id
        enter_at = now + timedelta(days=day)
        if not campaign.allow_parallel and busy_until.get(cid, enter_at) > enter_at:
            plan.skipped[f"{campaign.id}: already in another campaign"] += 1
            continue
        today = plan.days[int(day)]
        if campaign.in_holdout(a.customer_id):
            today.held_out[campaign.id] += 1
            continue
        today.entered[campaign.id] += 1
        plan.examples.setdefault(campaign.id, [])
        if len(plan.examples[campaign.id]) < 3:
            plan.examples[campaign.id].append(f"{a.customer_id} {a.profile.name}: {a.why}")
        zone = window_zone(campaign.send_window, customers[cid].get("timezone"), ws.zone)
        at = enter_at
        for step in campaign.steps:
            at = at + step.after
            if step.is_call:
                when = at
                if when < end:
                    plan.days[(when.date() - now.date()).days].calls[campaign.id] += 1
                continue
            when = next_send_time(campaign.send_window, zone, at)
            when = next_send_time(campaign.send_window, zone, cap.next_allowed(cid, when))
            if when >= end:
                break
            cap.record(cid, when)
            plan.days[(when.date() - now.date()).days].mails[f"{campaign.id}/{step.key}"] += 1
            at = when
        finish = max(at, enter_at)
        busy_until[cid] = finish
        if finish < end:
            plan.days[(finish.date() - now.date()).days].exits[f"{campaign.id}: completed"] += 1
    return plan
