"""Who enters a campaign, and on which day: the audience rule, shared by the daemon's
enrollment pass and ``reengage simulate``. Pure: it takes an assessment, never a clock."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from reengage.campaigns import Campaign
from reengage.detect import Assessment
from reengage.lapse_model import Inputs, LapseModel


def entry_day(
    campaign: Campaign, a: Assessment, info: dict[str, Any], days: int, model: LapseModel
) -> float | None:
    """The first day (from now) on which the customer meets the campaign's audience."""
    audience = campaign.audience
    assert audience is not None
    first = 0.0
    if audience.lapsed is not None:
        rule = audience.lapsed
        silent, gap = a.days_silent, a.expected_gap_days
        if a.profile.order_count == 0:
            return None
        first = max(0.0, rule.factor * gap - silent, rule.min_days_silent - silent)
        if rule.max_days_silent is not None and silent + first > rule.max_days_silent:
            return None
        # The score only grows with silence; step forward until it clears the bar.
        day = math.ceil(first)
        while day < days and score_on(a, day, model) < rule.min_score:
            day += 1
        first = float(day)
    if audience.declining is not None and not _declines(audience.declining, a):
        return None
    if first >= days:
        return None
    facts = facts_of(a, info, extra_silence=first)
    if not all(f.matches(facts) for f in audience.where):
        return None
    return first


def score_on(a: Assessment, day: int, model: LapseModel) -> float:
    """The lapse score ``day`` days from now if nobody buys: more silent, and older."""
    if day == 0:
        return a.lapse_score
    p = a.profile
    return model.score(
        Inputs(
            a.days_silent + day,
            a.expected_gap_days,
            p.order_count,
            a.age_days + day,
            p.total_value / max(p.order_count, 1),
        )
    )


def facts_of(a: Assessment, info: dict[str, Any], extra_silence: float = 0.0) -> dict[str, Any]:
    """The values audience filters compare against (see campaigns.FILTER_FIELDS)."""
    p = a.profile
    return {
        "segment": p.segment,
        "locale": info.get("locale"),
        "timezone": info.get("timezone"),
        "company": info.get("company"),
        "rep": info.get("rep"),
        "tags": info.get("tags", []),
        "interests": info.get("interests", []),
        "total_value": p.total_value,
        "orders": float(p.order_count),
        "days_silent": a.days_silent + extra_silence,
        "lapse_ratio": (a.days_silent + extra_silence) / a.expected_gap_days,
        "lapse_score": a.lapse_score,
        "value_per_year": a.value_per_year,
        "value_at_risk": a.value_at_risk,
        "priority": a.priority,
    }


# Facts that change with the clock alone. days_silent and lapse_ratio grow in a straight
# line, so a filter on them has a date it starts or stops holding; the others (the score
# and what follows from it) are looked at again at every pass once the rest allows entry.
LINEAR_FACTS = {"days_silent", "lapse_ratio"}
CLOCK_FACTS = LINEAR_FACTS | {"lapse_score", "value_at_risk", "priority"}


def earliest_entry(campaign: Campaign, a: Assessment, info: dict[str, Any]) -> float | None:
    """A lower bound, in days from now, on when the customer could first meet the campaign's
    audience if nothing about them changes; None when they never could.

    Exact where it can be (the silence range, filters on silence), and never later than
    the truth: a pass that looks at the customer then decides with :func:`entry_day`.
    """
    audience = campaign.audience
    assert audience is not None
    lo, hi = 0.0, math.inf
    silent, gap = a.days_silent, a.expected_gap_days
    if audience.lapsed is not None:
        rule = audience.lapsed
        if a.profile.order_count == 0:
            return None
        lo = max(0.0, rule.factor * gap - silent, rule.min_days_silent - silent)
        if rule.max_days_silent is not None:
            hi = rule.max_days_silent - silent
    if audience.declining is not None and not _declines(audience.declining, a):
        return None
    facts = facts_of(a, info)
    for f in audience.where:
        if f.field not in CLOCK_FACTS:
            if not f.matches(facts):
                return None
        elif f.field in LINEAR_FACTS and f.op in ("<", "<=", ">", ">="):
            # value(x) = now's value + rate · x days from now
            rate = 1.0 if f.field == "days_silent" else 1.0 / gap
            crossing = (float(f.value) - facts[f.field]) / rate
            if f.op in (">", ">="):
                lo = max(lo, crossing)
            else:
                hi = min(hi, crossing)
    return None if lo > hi else lo


def _declines(rule: Any, a: Assessment) -> bool:
    p = a.profile
    checks = [
        (rule.count_below, p.count_ratio),
        (rule.aov_below, p.aov_ratio),
        (rule.margin_below, p.margin_ratio),
    ]
    return any(
        limit is not None and value is not None and value <= limit for limit, value in checks
    )


def next_look(
    campaigns: list[Campaign],
    a: Assessment,
    info: dict[str, Any] | None,
    *,
    running: set[str],
    recent: dict[str, datetime],
    now: datetime,
) -> datetime | None:
    """When a detection pass must next look at this customer: the earliest moment one of
    ``campaigns`` could take them as things stand. None: none can until something about
    them changes (an activity, their record, an enrollment ending), which makes them due.

    ``info`` is None when they may not be mailed for a reason only a change lifts (no
    consent, do-not-contact, suppressed); a pause (``paused_until``) ends by itself.
    ``recent`` holds when they last entered each campaign; ``running``, the campaigns they
    are in now (none takes them twice at once, and one that runs alone waits for none).
    """
    if info is None:
        return None
    best: datetime | None = None
    paused = info.get("paused_until")
    for campaign in campaigns:
        if campaign.id in running or (running and not campaign.allow_parallel):
            continue
        lo = earliest_entry(campaign, a, info)
        if lo is None:
            continue
        when = now + timedelta(days=lo)
        last = recent.get(campaign.id)
        if last is not None:
            when = max(when, last + timedelta(days=campaign.not_enrolled_within_days))
        if paused is not None and paused > when:
            when = paused
        best = when if best is None or when < best else best
    return best
