"""Campaign results: funnels per campaign and step, lift against the holdout, call causes.

How the numbers are counted, so a marketer can trust them:

- Everything is about the customers who *entered* a campaign (from ``since`` on): their
  mails, what they did with them, whether they came back.
- Mail counts are counts of mails: ``sent`` were handed to the mail server and got a final
  answer, ``delivered`` were accepted and have not bounced since, ``opened`` … ``complained``
  count mails with at least one such response. Opens are inflated by mail privacy proxies
  (Apple Mail Privacy Protection loads every image), so an open is weak evidence.
- ``reactivated`` and ``revenue`` in a funnel: treated customers with a purchase credited to
  the campaign (within the attribution window after a mail), and what they spent.
- Lift compares like with like: in both groups a customer counts as reactivated when they
  bought within the *horizon* (the attribution window) of entering the campaign. The
  funnel's crediting runs from the last mail, which would give the treated group a longer
  window than the holdout and inflate the lift. Everyone assigned to the treatment counts,
  whether or not a mail reached them (intention to treat), as the holdout split was random.
- Uplift per segment (and rhythm class) is the same comparison within each group, counted
  only over customers who have had the whole horizon (:mod:`reengage.uplift`); a group
  too small to say gets "not enough data", never a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from reengage.digest import CausesReport, causes
from reengage.errors import InputError
from reengage.models import CauseScope, ResponseKind
from reengage.stats.intervals import Lift, lift
from reengage.store import Store
from reengage.store.campaign_counts import ArmCounts, CampaignCounts, StepCounts
from reengage.timeutil import parse_since as since_moment
from reengage.uplift import CampaignUplift, uplift_by_campaign

OPENS_NOTE = (
    "opens are counted only for campaigns with track_opens: true, and inflated by mail "
    "privacy proxies (Apple Mail Privacy Protection loads every image), so a mail can count "
    "as opened without being read"
)
BEFORE_FIRST_MAIL = "(before the first mail)"


@dataclass(frozen=True)
class Funnel:
    """Mails and what came of them, for a step or a whole campaign."""

    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    opened: int = 0  # inflated by privacy proxies: see OPENS_NOTE
    clicked: int = 0
    replied: int = 0
    unsubscribed: int = 0
    complained: int = 0
    calls: int = 0  # customers put on a rep's call list by a call step
    reactivated: int = 0
    revenue: float = 0.0


@dataclass(frozen=True)
class StepResult:
    """One step of a campaign."""

    key: str
    funnel: Funnel


@dataclass(frozen=True)
class TimelinePoint:
    """Cumulative counts at the end of one day, for both groups."""

    day: date
    treated: int
    treated_reactivated: int
    held_out: int
    held_out_reactivated: int

    @property
    def treated_rate(self) -> float | None:
        """Share of the treated so far who came back."""
        return self.treated_reactivated / self.treated if self.treated else None

    @property
    def held_out_rate(self) -> float | None:
        """Share of the holdout so far who came back anyway."""
        return self.held_out_reactivated / self.held_out if self.held_out else None


@dataclass(frozen=True)
class CampaignResult:
    """A campaign's funnel, its steps, its lift and how reactivation grew day by day."""

    campaign_id: str
    enrolled: int  # both groups
    held_out: int
    funnel: Funnel  # the treated group's mails summed over steps
    steps: list[StepResult]
    lift: Lift
    timeline: list[TimelinePoint]
    held_out_revenue: float  # what the holdout spent anyway (credited within the window)
    # Per segment and rhythm class, among who has had the whole window (reengage.uplift).
    uplift: CampaignUplift | None = None
    # treated who entered another campaign within the horizon of entering this one: their
    # returns count for each campaign they entered, so the lift is of the campaigns together
    also_entered: int = 0
    # who entered within the horizon before now, so has not had the whole window yet: the
    # lift counts them as they stand (so far), the uplift only once their window ends
    in_window_treated: int = 0
    in_window_held_out: int = 0


@dataclass(frozen=True)
class CallReason:
    """Calls that heard one reason for stopping, split by whether it is specific or systemic.

    ``value_at_risk``: a year's value of those customers as it stood at the call.
    """

    reason: str
    specific: int
    systemic: int
    unsure: int
    calls: int
    value_at_risk: float


@dataclass(frozen=True)
class CallResults:
    """What reps learned on their calls (across campaigns: a call is about a customer)."""

    calls: int
    reached: int  # someone picked up and gave a reason
    reasons: list[CallReason]  # most heard first
    scopes: dict[str, int]  # specific, systemic, unsure → calls
    # A year's value of everyone who gave a reason, each once (not the reasons' sum: a
    # customer who gave two reasons is at risk once).
    value_at_risk: float


@dataclass(frozen=True)
class Results:
    """Everything ``reengage stats`` and the dashboard show."""

    generated_at: datetime
    since: datetime | None
    campaign: str | None
    horizon: timedelta
    campaigns: list[CampaignResult]
    calls: CallResults


def campaign_results(
    store: Store,
    now: datetime,
    *,
    campaign: str | None = None,
    since: datetime | None = None,
    horizon: timedelta | None = None,
) -> Results:
    """Funnels, lift and call causes for customers who entered campaigns from ``since`` on.

    ``campaign`` narrows to one (an unknown one is an :class:`InputError` naming the known
    ones); ``horizon`` is how long after entering a purchase counts towards lift (default:
    the store's attribution window).
    """
    if campaign is not None:
        known = store.stats.campaign_ids()
        if campaign not in known:
            raise InputError(
                f"no customer has entered campaign {campaign!r}; campaigns with results: "
                f"{', '.join(known) or 'none yet'}"
            )
    if since is not None and since > now:
        raise InputError(f"{since:%Y-%m-%d %H:%M} UTC is in the future: nothing to show yet")
    horizon = horizon if horizon is not None else store.attribution_window
    snap = store.stats.snapshot(campaign=campaign, since=since, horizon=horizon)
    ids = sorted(snap.campaigns)
    # Nobody held out (holdout_percent 0): uplift cannot be measured, however long one waits.
    bare = {key for key in ids if snap.campaigns[key].holdout.enrolled == 0}
    uplift = uplift_by_campaign(
        store, now, campaigns=ids, since=since, horizon=horizon, no_holdout=bare
    )
    campaigns = [
        _campaign(
            snap.campaigns[key],
            now,
            uplift.get(key, CampaignUplift(key, horizon, [], [], key not in bare)),
        )
        for key in ids
    ]
    return Results(now, since, campaign, horizon, campaigns, _calls(causes(store, since)))


def parse_since(text: str, now: datetime, zone: ZoneInfo) -> datetime:
    """``2026-01-31`` (midnight in ``zone``), an ISO datetime, or ``30d`` / ``90min`` before now
    (:func:`reengage.timeutil.parse_since`, as the commands read it).

    Raises :class:`InputError` saying which forms are understood.
    """
    try:
        return since_moment(text, now, zone)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _campaign(counts: CampaignCounts, now: datetime, uplift: CampaignUplift) -> CampaignResult:
    ordered = sorted(
        counts.steps.items(),
        # Steps in the order customers met them; credit before any mail goes last.
        key=lambda item: (item[0] is None, item[1].first_seen or now, item[0] or ""),
    )
    steps = [StepResult(key or BEFORE_FIRST_MAIL, _funnel(step)) for key, step in ordered]
    total = Funnel(
        **{
            name: sum(getattr(s.funnel, name) for s in steps)
            for name in Funnel.__dataclass_fields__
            if name not in ("reactivated", "revenue")
        },
        reactivated=counts.treatment.converted,
        revenue=counts.treatment.revenue,
    )
    t, h = counts.treatment, counts.holdout
    return CampaignResult(
        campaign_id=counts.campaign_id,
        enrolled=t.enrolled + h.enrolled,
        held_out=h.enrolled,
        funnel=total,
        steps=steps,
        lift=lift(t.enrolled, t.reactivated, h.enrolled, h.reactivated),
        timeline=_timeline(t, h, now.date()),
        held_out_revenue=h.revenue,
        uplift=uplift,
        also_entered=counts.also_entered,
        in_window_treated=t.enrolled - sum(g.treated for g in uplift.segments),
        in_window_held_out=h.enrolled - sum(g.held_out for g in uplift.segments),
    )


def _funnel(step: StepCounts) -> Funnel:
    said = step.responses
    return Funnel(
        sent=step.sent,
        delivered=step.delivered,
        bounced=step.bounced,
        opened=said.get(ResponseKind.OPEN.value, 0),
        clicked=said.get(ResponseKind.CLICK.value, 0),
        replied=said.get(ResponseKind.REPLY.value, 0),
        unsubscribed=said.get(ResponseKind.UNSUBSCRIBE.value, 0),
        complained=said.get(ResponseKind.COMPLAINT.value, 0),
        calls=step.calls,
        reactivated=step.reactivated,
        revenue=step.revenue,
    )


def _timeline(treated: ArmCounts, held: ArmCounts, today: date) -> list[TimelinePoint]:
    days = [*treated.enrolled_by_day, *held.enrolled_by_day]
    if not days:
        return []
    first = min(days)
    last = max(today, *days, *treated.reactivated_by_day, *held.reactivated_by_day)
    points: list[TimelinePoint] = []
    totals = [0, 0, 0, 0]
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        totals[0] += treated.enrolled_by_day.get(day, 0)
        totals[1] += treated.reactivated_by_day.get(day, 0)
        totals[2] += held.enrolled_by_day.get(day, 0)
        totals[3] += held.reactivated_by_day.get(day, 0)
        points.append(TimelinePoint(day, *totals))
    return points


def _calls(report: CausesReport) -> CallResults:
    reasons = [
        CallReason(r.reason, r.specific, r.systemic, r.unsure, r.calls, r.value_lost)
        for r in sorted(report.rows, key=lambda r: (-r.calls, r.reason))
    ]
    scopes = {
        scope.value: sum(getattr(r, scope.value) for r in report.rows) for scope in CauseScope
    }
    return CallResults(report.calls, report.reached, reasons, scopes, report.value_lost)
