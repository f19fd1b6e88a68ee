"""Who enters a campaign, and on which day: the audience rule, shared by the daemon's
enrollment pass and ``reengage simulate``. Pure: it takes an assessment, never a clock."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from reengage.campaigns import Campaign
from reengage.detect import YEAR_DAYS, Assessment, shrink_of
from reengage.lapse_model import Inputs, LapseModel, ScoreAhead


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
        # Step forward a day at a time until the score clears the bar (it need not only grow).
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
    return model.score(inputs_now(a).later(day))


def inputs_now(a: Assessment) -> Inputs:
    """What ``a``'s lapse score was computed from (rebuilt for an assessment made without)."""
    if a.inputs is not None:
        return a.inputs
    p = a.profile
    return Inputs(
        a.days_silent,
        a.expected_gap_days,
        p.order_count,
        a.age_days,
        p.total_value / max(p.order_count, 1),
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
# line, so a filter on them has a date it starts or stops holding; the score and what
# follows from it are dated by a search over bounds on the score (see _first_score_day).
LINEAR_FACTS = {"days_silent", "lapse_ratio"}
SCORE_FACTS = {"lapse_score", "value_at_risk", "priority"}
CLOCK_FACTS = LINEAR_FACTS | SCORE_FACTS
LOOK_AHEAD_DAYS = 366.0  # a score rule not met within this is looked at again then
LOOK_STEP_DAYS = 1.0 / 1440.0  # a score date is at most about a minute early
SEARCH_STEPS = 200  # stretches a search weighs at most; past that it answers early


def earliest_entry(
    campaign: Campaign, a: Assessment, info: dict[str, Any], model: LapseModel | None = None
) -> float | None:
    """A lower bound, in days from now, on when the customer could first meet the campaign's
    audience if nothing about them changes; None when they never could.

    Exact where it can be (the silence range, filters on silence), and never later than
    the truth: a pass that looks at the customer then decides with :func:`entry_day`.
    Score rules (``min_score``, filters on the score, value at risk or priority) are dated
    with ``model``, the one that scored ``a``, once the rest of the rule lets the customer
    in; until then the rest's date stands, and without ``model`` that date is the answer
    (a pass looks again at every pass after it).
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
    if lo > hi:
        return None
    rules = [(f.field, f.op, f.value) for f in audience.where if f.field in SCORE_FACTS]
    if audience.lapsed is not None and audience.lapsed.min_score > 0:
        rules.append(("lapse_score", ">=", audience.lapsed.min_score))
    # Searching costs a few dozen scores, so it waits until the rest of the rule lets the
    # customer in: a whole pass pays it for the few, and the others are looked at once
    # more, when the rest's date comes.
    if not rules or model is None or lo > 0:
        return lo
    return _first_score_day(rules, a, model, lo, hi)


def _first_score_day(
    rules: list[tuple[str, str, Any]], a: Assessment, model: LapseModel, lo: float, hi: float
) -> float | None:
    """A lower bound on the first day in [lo, hi] on which every score rule holds; None
    if none can.

    The days are searched stretch by stretch, earliest first: a stretch on which the
    bounds of :class:`ScoreAhead` show some rule cannot hold is ruled out whole, the others
    are halved, down to :data:`LOOK_STEP_DAYS`. Everything before the answer was ruled
    out, so it is never late; where the score moves one way (most customers) it is the
    crossing to within a minute. Beyond :data:`LOOK_AHEAD_DAYS` the answer is "look again
    then".
    """
    if a.days_silent <= 0:  # an order dated ahead of now: silence does not grow yet
        return lo
    p = a.profile
    ahead = ScoreAhead(model, inputs_now(a))
    shrink = shrink_of(p.margin_ratio, p.aov_ratio, p.count_ratio)

    def may_hold(t0: float, t1: float) -> bool:
        low, high = ahead.bounds(t0, t1)
        facts = {"lapse_score": (low, high)}
        if any(rule[0] != "lapse_score" for rule in rules):
            # as detect.assess: the value at risk is a year's value times the larger of
            # the score and the shrink; the priority halves it for each year of silence
            at_risk = (a.value_per_year * max(low, shrink), a.value_per_year * max(high, shrink))
            facts["value_at_risk"] = _widen(*at_risk)
            facts["priority"] = _widen(
                at_risk[0] * 0.5 ** ((a.days_silent + t1) / YEAR_DAYS),
                at_risk[1] * 0.5 ** ((a.days_silent + t0) / YEAR_DAYS),
            )
        return all(_may_compare(facts[field], op, value) for field, op, value in rules)

    if may_hold(lo, lo):  # the rules hold already (often: then something else waits)
        return lo
    end = min(hi, lo + LOOK_AHEAD_DAYS)
    stretches = [(lo, end)]
    for _ in range(SEARCH_STEPS):
        if not stretches:
            return None if end == hi else end
        t0, t1 = stretches.pop()
        if not may_hold(t0, t1):
            continue
        if t1 - t0 <= LOOK_STEP_DAYS:
            return t0
        middle = (t0 + t1) / 2.0
        stretches += [(middle, t1), (t0, middle)]  # the earlier half first
    # Out of steps: everything before the earliest stretch left was ruled out.
    return min(t0 for t0, _ in stretches) if stretches else (None if end == hi else end)


def _may_compare(bounds: tuple[float, float], op: str, value: Any) -> bool:
    """Whether ``fact op value`` can hold for some fact within ``bounds``."""
    low, high = bounds
    if op in (">", ">="):
        return high >= float(value)
    if op in ("<", "<="):
        return low <= float(value)
    return True  # ==, !=, in: rare on a score; never ruled out


def _widen(low: float, high: float) -> tuple[float, float]:
    return low - 1e-9 * abs(low) - 1e-12, high + 1e-9 * abs(high) + 1e-12


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
    model: LapseModel | None = None,
    held_until: datetime | None = None,
) -> datetime | None:
    """When a detection pass must next look at this customer: the earliest moment one of
    ``campaigns`` could take them as things stand. None: none can until something about
    them changes (an activity, their record, an enrollment ending), which makes them due.

    ``info`` is None when they may not be mailed for a reason only a change lifts (no
    consent, do-not-contact, suppressed); a pause (``paused_until``) ends by itself.
    ``recent`` holds when they last entered each campaign; ``running``, the campaigns they
    are in now (none takes them twice at once, and one that runs alone waits for none).
    ``model`` is the one that scored ``a``: with it score rules get a date too, without it
    a customer held back only by one is looked at again at every pass. ``held_until``: the
    end of the attribution window of a holdout they are in; no campaign takes them before.
    """
    if info is None:
        return None
    best: datetime | None = None
    paused = info.get("paused_until")
    for campaign in campaigns:
        if campaign.id in running or (running and not campaign.allow_parallel):
            continue
        lo = earliest_entry(campaign, a, info, model)
        if lo is None:
            continue
        when = now + timedelta(days=lo)
        last = recent.get(campaign.id)
        if last is not None:
            when = max(when, last + timedelta(days=campaign.not_enrolled_within_days))
        if paused is not None and paused > when:
            when = paused
        if held_until is not None and held_until > when:
            when = held_until
        best = when if best is None or when < best else best
    return best
