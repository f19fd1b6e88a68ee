"""Who enters a campaign, and on which day: the audience rule, shared by the daemon's
enrollment pass and ``reengage simulate``. Pure: it takes an assessment, never a clock."""

from __future__ import annotations

import math
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
    if audience.declining is not None:
        rule_d = audience.declining
        p = a.profile
        checks = [
            (rule_d.count_below, p.count_ratio),
            (rule_d.aov_below, p.aov_ratio),
            (rule_d.margin_below, p.margin_ratio),
        ]
        if not any(
            limit is not None and value is not None and value <= limit for limit, value in checks
        ):
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
