"""Who contact actually helps: a campaign's uplift per segment, treated against held out.

Every campaign keeps a random holdout, so within one segment the held-out customers are
customers like the treated ones, left alone. A segment's uplift is the share of its treated
customers who came back within the window (the lift horizon: the attribution window)
minus the share of its held-out customers who did, with Newcombe's 95% interval
(:mod:`reengage.proportions`). Customers are grouped by their ``segment`` and, for
``reengage stats`` only, by their rhythm class (how often they order: weekly, monthly,
quarterly, slower, or one order so far; :data:`reengage.store.uplift.RHYTHMS`).

Honest when the data is thin: only customers who have had the whole window count, and a
group with fewer than :data:`MIN_GROUP` of them treated or held out, or fewer than 5 who
came back in both together, gets no number, only "not enough data (n treated, m held out;
needs …)". A campaign that held nobody out at all
(``holdout_percent: 0``) will never have the data: it says so, and how to give it a holdout.

A campaign whose audience sets ``min_uplift`` leaves out the customers of a segment whose
estimate (the point estimate: the interval is shown beside it) is below it;
:func:`with_min_uplift` turns that rule into a filter on the segment, so the detection
pass's looks and its indexed selection stay exact (the filter is part of the pass's
fingerprint: when a segment crosses the bar, the next pass is whole). Measuring the
segments is a grouped query over every enrollment (about 3 s a million on PostgreSQL), so
they are measured at most every :data:`MEASURE_EVERY` (and at once when the bar changes) and
kept in the store (``store.uplift_rules``): every worker's pass filters with the same list.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from reengage.campaigns import Campaign
from reengage.campaigns.filters import Filter
from reengage.logs import get_logger
from reengage.models import NO_SEGMENT
from reengage.proportions import MIN_CAME_BACK, Interval, newcombe, points
from reengage.store import Store
from reengage.store.uplift import NO_RHYTHM, RHYTHMS, SLOWER, KeptRule, UpliftCount

log = get_logger(__name__)

# A group's uplift is estimated only from at least this many treated customers and this
# many held-out ones, each of whom has had the whole window. Below it Newcombe's interval
# is still valid, but so wide (about ±25 points at 30 a side) that acting on it would
# shut segments out on noise.
MIN_GROUP = 30
# A campaign's min_uplift segments are measured again after this: an estimate over weeks of
# enrollments moves little in an hour, and each pass between filters with the same list.
MEASURE_EVERY = timedelta(hours=1)
NO_HOLDOUT_VERDICT = (
    "no holdout: nobody who entered was held out (holdout_percent 0 keeps none), so whether "
    "contact helps cannot be measured; give the campaign a holdout_percent (10 is usual) in "
    "its YAML"
)
RHYTHM_ORDER = (*(name for _, name in RHYTHMS), SLOWER, NO_RHYTHM)


class UpliftKind(StrEnum):
    """What one group's numbers allow us to say."""

    NOT_ENOUGH_DATA = "not_enough_data"
    NO_HOLDOUT = "no_holdout"  # the campaign held nobody out: it can never be measured
    HELPS = "helps"  # the whole interval is above 0
    NO_MEASURABLE_EFFECT = "no_measurable_effect"  # the interval contains 0
    HURTS = "hurts"  # the whole interval is below 0


@dataclass(frozen=True)
class GroupUplift:
    """One group's (a segment's or a rhythm class's) counts, uplift and interval.

    ``uplift`` and ``interval`` are None when the group has too little data (or the
    campaign no holdout).
    """

    grouping: str  # "segment" or "rhythm"
    name: str | None  # the segment (None: customers without one) or the rhythm class
    treated: int
    treated_came_back: int
    held_out: int
    held_out_came_back: int
    uplift: float | None  # treated rate − held-out rate, a proportion
    interval: Interval | None
    kind: UpliftKind
    verdict: str

    @property
    def label(self) -> str:
        """The group as shown to people."""
        return NO_SEGMENT if self.name is None else self.name

    @property
    def words(self) -> str:
        """The verdict without its numbers ("contact helps"), for beside them in a table;
        "not enough data (…)" and "no holdout: …" whole."""
        return self.verdict if self.uplift is None else self.verdict.split(":", 1)[0]

    @property
    def treated_rate(self) -> float | None:
        """Share of the group's treated customers who came back."""
        return self.treated_came_back / self.treated if self.treated else None

    @property
    def held_out_rate(self) -> float | None:
        """Share of the group's held-out customers who came back anyway."""
        return self.held_out_came_back / self.held_out if self.held_out else None


@dataclass(frozen=True)
class CampaignUplift:
    """A campaign's uplift per segment and per rhythm class, over the same window."""

    campaign_id: str
    horizon: timedelta
    segments: list[GroupUplift]
    rhythms: list[GroupUplift]
    keeps_holdout: bool = True  # False: nobody who entered it was held out

    def segment(self, name: str | None) -> GroupUplift | None:
        """The estimate for one segment, if anyone of it entered the campaign."""
        return next((g for g in self.segments if g.name == name), None)


def group_uplift(
    grouping: str,
    name: str | None,
    counts: tuple[int, int, int, int],
    horizon: timedelta,
    *,
    keeps_holdout: bool = True,
) -> GroupUplift:
    """The uplift of one group from ``(treated, treated came back, held out, held out came
    back)``, or "not enough data" below :data:`MIN_GROUP` a side or with fewer than
    :data:`~reengage.proportions.MIN_CAME_BACK` who came back in both together, or "no
    holdout" when the campaign held nobody out (``keeps_holdout`` False)."""
    treated, treated_back, held, held_back = counts
    if not keeps_holdout:
        verdict = NO_HOLDOUT_VERDICT
        return GroupUplift(grouping, name, *counts, None, None, UpliftKind.NO_HOLDOUT, verdict)
    if min(treated, held) < MIN_GROUP:
        days = round(horizon.total_seconds() / 86400)
        text = (
            f"not enough data ({treated:,} treated, {held:,} held out; needs {MIN_GROUP} of "
            f"each who have had the whole {days}-day window)"
        )
        return GroupUplift(grouping, name, *counts, None, None, UpliftKind.NOT_ENOUGH_DATA, text)
    if treated_back + held_back < MIN_CAME_BACK:
        text = (
            f"not enough data ({treated:,} treated, {held:,} held out, "
            f"{treated_back + held_back} came back; needs {MIN_CAME_BACK} who came back, in "
            "both groups together)"
        )
        return GroupUplift(grouping, name, *counts, None, None, UpliftKind.NOT_ENOUGH_DATA, text)
    uplift = treated_back / treated - held_back / held
    interval = newcombe(treated_back, treated, held_back, held)
    if interval.low > 0:
        kind, words = UpliftKind.HELPS, "contact helps"
    elif interval.high < 0:
        kind, words = UpliftKind.HURTS, "fewer come back when contacted"
    else:
        kind, words = UpliftKind.NO_MEASURABLE_EFFECT, "no measurable effect"
    text = (
        f"{words}: {_signed(uplift)} points, 95% CI {points(interval.low)} to "
        f"{points(interval.high)}"
    )
    return GroupUplift(grouping, name, *counts, uplift, interval, kind, text)


def estimate(
    counts: list[UpliftCount], horizon: timedelta, no_holdout: Collection[str] = ()
) -> dict[str, CampaignUplift]:
    """Each campaign's uplift per segment and per rhythm class, from the store's counts
    (``no_holdout``: campaigns that held nobody out, whose groups say so)."""
    by: dict[tuple[str, str], dict[str | None, list[int]]] = defaultdict(dict)
    for c in counts:
        for grouping, name in (("segment", c.segment), ("rhythm", c.rhythm)):
            cells = by[(c.campaign_id, grouping)].setdefault(name, [0, 0, 0, 0])
            at = 2 if c.held_out else 0
            cells[at] += c.entered
            cells[at + 1] += c.came_back
    found: dict[str, CampaignUplift] = {}
    for campaign_id in sorted({c.campaign_id for c in counts}):
        segments = by[(campaign_id, "segment")]
        rhythms = by[(campaign_id, "rhythm")]
        kept = campaign_id not in no_holdout
        found[campaign_id] = CampaignUplift(
            campaign_id,
            horizon,
            [
                group_uplift("segment", name, _four(segments[name]), horizon, keeps_holdout=kept)
                # Customers without a segment last; the rest by name.
                for name in sorted(segments, key=lambda s: (s is None, s or ""))
            ],
            [
                group_uplift("rhythm", name, _four(rhythms[name]), horizon, keeps_holdout=kept)
                for name in sorted(rhythms, key=_rhythm_rank)
            ],
            kept,
        )
    return found


def uplift_by_campaign(
    store: Store,
    now: datetime,
    *,
    campaigns: list[str] | None = None,
    since: datetime | None = None,
    horizon: timedelta | None = None,
    no_holdout: Collection[str] = (),
) -> dict[str, CampaignUplift]:
    """The uplift of ``campaigns`` (None: every one with enrollments) for customers who
    entered from ``since`` on and have had the whole ``horizon`` (default: the store's
    attribution window) by ``now``; ``no_holdout``: campaigns that held nobody out."""
    horizon = horizon if horizon is not None else store.attribution_window
    counts = store.stats.uplift(campaigns=campaigns, since=since, horizon=horizon, now=now)
    return estimate(counts, horizon, no_holdout)


def below_min_uplift(campaign: Campaign, found: CampaignUplift | None) -> list[GroupUplift]:
    """The segments ``campaign``'s ``min_uplift`` leaves out: estimated (enough data) and
    with a point estimate below the bar."""
    bar = campaign.audience.min_uplift if campaign.audience is not None else None
    return [] if bar is None else _below(bar, found)


def _below(bar: float, found: CampaignUplift | None) -> list[GroupUplift]:
    if found is None:
        return []
    return [g for g in found.segments if g.uplift is not None and g.uplift < bar]


def with_min_uplift(
    store: Store, campaigns: list[Campaign], now: datetime, *, keep: bool = True
) -> list[Campaign]:
    """``campaigns`` with each ``min_uplift`` turned into a filter on the segment (the
    segments :func:`min_uplift_left_out` names). Campaigns without ``min_uplift`` (and
    passes with none) are handed back as they are."""
    left_out = min_uplift_left_out(store, campaigns, now, keep=keep)
    ruled: list[Campaign] = []
    for campaign in campaigns:
        names = left_out.get(campaign.id)
        audience = campaign.audience
        if not names or audience is None:
            ruled.append(campaign)
            continue
        shown = ", ".join(repr(NO_SEGMENT if name is None else name) for name in names)
        filter_ = Filter(
            f"segment not in [{shown}] (min_uplift {audience.min_uplift:g}: contact helps "
            "them less)",
            "segment",
            "not in",
            names,
        )
        narrowed = audience.model_copy(update={"where": [*audience.where, filter_]})
        ruled.append(campaign.model_copy(update={"audience": narrowed}))
    return ruled


def min_uplift_left_out(
    store: Store, campaigns: list[Campaign], now: datetime, *, keep: bool = True
) -> dict[str, tuple[str | None, ...]]:
    """The segments each campaign's ``min_uplift`` leaves out (None: customers without a
    segment), as kept in the store when measured within the last :data:`MEASURE_EVERY`
    against the same bar, else measured now (one query for every stale campaign) and kept
    (``keep`` False: only used, as ``simulate`` does). Campaigns that leave out nobody are
    not named."""
    bars = {
        c.id: c.audience.min_uplift
        for c in campaigns
        if c.audience is not None and c.audience.min_uplift is not None
    }
    if not bars:
        return {}
    kept = store.uplift_rules.read(list(bars))
    stale = [cid for cid, bar in bars.items() if not _fresh(kept.get(cid), bar, now)]
    if stale:
        found = uplift_by_campaign(store, now, campaigns=stale)
        measured = {cid: _measured(cid, bars[cid], found.get(cid), now) for cid in stale}
        if keep:
            seen = {cid: kept[cid].measured_at if cid in kept else None for cid in stale}
            store.uplift_rules.keep(list(measured.values()), seen)
            kept = store.uplift_rules.read(list(bars))  # another worker's, if it came first
        else:
            kept.update(measured)
    return {
        cid: tuple(name for name, _ in rule.segments)
        for cid, rule in kept.items()
        if cid in bars and rule.segments
    }


def _fresh(rule: KeptRule | None, bar: float, now: datetime) -> bool:
    # Measured against this bar within the hour (a clock set back measures again).
    return (
        rule is not None
        and rule.min_uplift == bar
        and rule.measured_at <= now < rule.measured_at + MEASURE_EVERY
    )


def _measured(
    campaign_id: str, bar: float, found: CampaignUplift | None, now: datetime
) -> KeptRule:
    """The segments below ``bar`` as measured now (logged: it changes who may enter)."""
    out = _below(bar, found)
    if out:
        log.info(
            "min_uplift_leaves_out",
            campaign=campaign_id,
            min_uplift=bar,
            segments={g.label: round(g.uplift or 0.0, 4) for g in out},
        )
    return KeptRule(campaign_id, bar, now, tuple((g.name, g.uplift or 0.0) for g in out))


def _four(cells: list[int]) -> tuple[int, int, int, int]:
    return cells[0], cells[1], cells[2], cells[3]


def _rhythm_rank(name: str | None) -> int:
    return RHYTHM_ORDER.index(name) if name in RHYTHM_ORDER else len(RHYTHM_ORDER)


def _signed(proportion: float) -> str:
    text = points(proportion)
    return text if text.startswith("−") or text == "0.0" else f"+{text}"
