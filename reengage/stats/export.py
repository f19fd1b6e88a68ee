"""Results as data: a JSON document and one tidy CSV table, for spreadsheets and scripts.

The CSV has one row per fact: ``campaign, step, group, subgroup, reason, scope, measure,
value`` (``subgroup``: the segment or rhythm class of an uplift row), where ``measure`` says
what the row counts (:data:`MEASURES`). No row is the sum of other rows, so summing the
values of one measure over any selection of rows (a campaign, a step, a group, a reason)
never counts anything twice; a pivot table gives the totals the terminal shows. The one
exception is money at risk across reasons: a customer who gave two reasons is at risk in
both, so the terminal's "all" is its own measure, ``value_at_risk_all`` (each customer
once), not the sum of the reasons' ``value_at_risk``. Money has two decimals, lift and its
interval are percentage points.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from typing import Any

from reengage.stats.intervals import Lift
from reengage.stats.results import OPENS_NOTE, CallResults, CampaignResult, Funnel, Results
from reengage.uplift import MIN_GROUP, CampaignUplift, GroupUplift

CSV_COLUMNS = ["campaign", "step", "group", "subgroup", "reason", "scope", "measure", "value"]

# What each measure counts, and on which rows (the README's table says the same).
MEASURES = {
    "entered": "customers who entered the campaign, per group (treated, held_out)",
    "came_back": "customers who bought within the lift horizon of entering, per group "
    "(whichever campaign the purchase is credited to)",
    "in_window": "customers who entered within the lift horizon before now, per group: the "
    "lift counts them as they stand so far, the uplift only once their window ends",
    "also_entered_another": "treated customers who entered another campaign within the lift "
    "horizon of entering this one (their returns count for each)",
    "reactivated": "treated customers with a purchase credited to one of the campaign's "
    "mails, each once",
    "sent": "mails handed to the mail server, per step",
    "delivered": "mails accepted and not bounced since, per step",
    "bounced": "mails bounced, per step",
    "opened": "mails opened at least once (inflated by privacy proxies), per step",
    "clicked": "mails with a click, per step",
    "replied": "mails answered, per step",
    "unsubscribed": "mails someone unsubscribed from, per step",
    "complained": "mails reported as spam, per step",
    "put_on_call_list": "customers a call step put on a rep's list, per step",
    "credited": "customers with a purchase credited to this step's mail (one credited to "
    "two steps counts in both; reactivated counts them once)",
    "revenue": "what credited purchases brought, per step (treated) and per campaign for "
    "the held_out group (what it spent anyway)",
    "lift_points": "treated minus held-out came-back rate, percentage points",
    "ci_low_points": "low end of the lift's 95% interval, percentage points",
    "ci_high_points": "high end of the lift's 95% interval, percentage points",
    "verdict_kind": "what the lift means, as a key (lift, no_measurable_lift, ...)",
    "verdict": "what the lift means, in words",
    "segment_entered": "customers of the segment (subgroup) who entered and have had the "
    "whole lift horizon, per group",
    "segment_came_back": "of them, who bought within the lift horizon of entering, per group",
    "segment_uplift_points": "the segment's treated minus held-out came-back rate, percentage "
    "points (only with enough data)",
    "segment_ci_low_points": "low end of the segment's uplift's 95% interval",
    "segment_ci_high_points": "high end of the segment's uplift's 95% interval",
    "segment_verdict_kind": "what the segment's uplift means, as a key (helps, "
    "no_measurable_effect, hurts, not_enough_data)",
    "segment_verdict": "what the segment's uplift means, in words",
    "rhythm_entered": "the same as segment_entered, per rhythm class (subgroup)",
    "rhythm_came_back": "the same as segment_came_back, per rhythm class",
    "rhythm_uplift_points": "the same as segment_uplift_points, per rhythm class",
    "rhythm_ci_low_points": "the same as segment_ci_low_points, per rhythm class",
    "rhythm_ci_high_points": "the same as segment_ci_high_points, per rhythm class",
    "rhythm_verdict_kind": "the same as segment_verdict_kind, per rhythm class",
    "rhythm_verdict": "the same as segment_verdict, per rhythm class",
    "calls": "call outcomes, per reason and scope (no reason: nobody gave one)",
    "value_at_risk": "a year's value of the customers who gave the reason, each once, per reason",
    "value_at_risk_all": "a year's value of the customers who gave any reason, each once (a "
    "customer who gave two reasons is in both reasons' value_at_risk)",
}
MAIL_MEASURES = [
    "sent",
    "delivered",
    "bounced",
    "opened",
    "clicked",
    "replied",
    "unsubscribed",
    "complained",
]
MONEY_MEASURES = {"revenue", "value_at_risk", "value_at_risk_all"}
TREATED, HELD_OUT = "treated", "held_out"


def money(amount: float) -> float:
    """An amount rounded to cents, as written in the CSV and JSON (no 542.8199999999999)."""
    return round(amount, 2)


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def lift_fields(found: Lift) -> dict[str, Any]:
    """A lift as flat fields, in percentage points."""
    interval = found.interval
    return {
        "treated": found.treated,
        # came back within the lift horizon of entering (what the lift compares); the
        # *_reactivated names are the same counts, kept for readers written against them
        "treated_came_back": found.treated_reactivated,
        "held_out_came_back": found.held_out_reactivated if found.held_out else None,
        "treated_reactivated": found.treated_reactivated,
        "held_out_reactivated": found.held_out_reactivated,
        "treated_rate": _pct(found.treated_rate),
        "held_out_rate": _pct(found.held_out_rate),
        "lift_points": _pct(found.difference),
        "ci_low_points": _pct(interval.low) if interval else None,
        "ci_high_points": _pct(interval.high) if interval else None,
        "verdict_kind": found.kind.value,
        "verdict": found.verdict,
    }


def to_json(results: Results) -> dict[str, Any]:
    """Results as a JSON-ready document (dates as ISO strings, money to cents)."""
    calls = results.calls
    return {
        "generated_at": results.generated_at.isoformat(),
        "since": results.since.isoformat() if results.since else None,
        "campaign": results.campaign,
        "lift_horizon_days": results.horizon.total_seconds() / 86400,
        "notes": {"opened": OPENS_NOTE},
        "campaigns": [_campaign_json(c) for c in results.campaigns],
        "calls": {
            **asdict(calls),
            "value_at_risk": money(calls.value_at_risk),
            "reasons": [
                {**asdict(r), "value_at_risk": money(r.value_at_risk)} for r in calls.reasons
            ],
        },
    }


def _funnel_json(funnel: Funnel) -> dict[str, Any]:
    return {**asdict(funnel), "revenue": money(funnel.revenue)}


def _campaign_json(c: CampaignResult) -> dict[str, Any]:
    return {
        "campaign": c.campaign_id,
        "enrolled": c.enrolled,  # treated and held out together
        "treated": c.lift.treated,
        "held_out": c.held_out,
        "treated_also_entered_another": c.also_entered,
        "treated_in_window": c.in_window_treated,
        "held_out_in_window": c.in_window_held_out,
        **_funnel_json(c.funnel),
        "held_out_revenue": money(c.held_out_revenue),
        "lift": lift_fields(c.lift),
        "uplift": _uplift_json(c.uplift),
        "steps": [{"step": s.key, **_funnel_json(s.funnel)} for s in c.steps],
        "timeline": [
            {
                "day": p.day.isoformat(),
                "treated": p.treated,
                "treated_reactivated": p.treated_reactivated,
                "held_out": p.held_out,
                "held_out_reactivated": p.held_out_reactivated,
            }
            for p in c.timeline
        ],
    }


def uplift_fields(found: GroupUplift) -> dict[str, Any]:
    """One group's uplift as flat fields, in percentage points (None without enough data)."""
    interval = found.interval
    return {
        found.grouping: found.label,
        "treated": found.treated,
        "treated_came_back": found.treated_came_back,
        "held_out": found.held_out,
        "held_out_came_back": found.held_out_came_back,
        "treated_rate": _pct(found.treated_rate),
        "held_out_rate": _pct(found.held_out_rate),
        "uplift_points": _pct(found.uplift),
        "ci_low_points": _pct(interval.low) if interval else None,
        "ci_high_points": _pct(interval.high) if interval else None,
        "verdict_kind": found.kind.value,
        "verdict": found.verdict,
    }


def _uplift_json(found: CampaignUplift | None) -> dict[str, Any]:
    return {
        "horizon_days": found.horizon.total_seconds() / 86400 if found else None,
        "min_per_group": MIN_GROUP,
        "by_segment": [uplift_fields(g) for g in found.segments] if found else [],
        "by_rhythm": [uplift_fields(g) for g in found.rhythms] if found else [],
    }


def csv_rows(results: Results) -> list[dict[str, Any]]:
    """The CSV's rows (see the module's docstring), blank columns left out."""
    rows: list[dict[str, Any]] = []
    for c in results.campaigns:
        rows.extend(_campaign_rows(c))
    rows.extend(_call_rows(results.calls))
    return rows


def _campaign_rows(c: CampaignResult) -> list[dict[str, Any]]:
    found = c.lift
    campaign = {"campaign": c.campaign_id}
    rows: list[dict[str, Any]] = [
        {**campaign, "group": TREATED, "measure": "entered", "value": found.treated},
        {**campaign, "group": HELD_OUT, "measure": "entered", "value": found.held_out},
        {**campaign, "group": TREATED, "measure": "came_back", "value": found.treated_reactivated},
        {**campaign, "group": TREATED, "measure": "reactivated", "value": c.funnel.reactivated},
        {**campaign, "group": TREATED, "measure": "also_entered_another", "value": c.also_entered},
        {**campaign, "group": TREATED, "measure": "in_window", "value": c.in_window_treated},
    ]
    if found.held_out:  # a campaign without a holdout has no holdout that came back or spent
        held = {**campaign, "group": HELD_OUT}
        rows.append({**held, "measure": "came_back", "value": found.held_out_reactivated})
        rows.append({**held, "measure": "in_window", "value": c.in_window_held_out})
        rows.append({**held, "measure": "revenue", "value": money(c.held_out_revenue)})
    lift = lift_fields(found)
    for measure in ("lift_points", "ci_low_points", "ci_high_points", "verdict_kind", "verdict"):
        if lift[measure] is not None:
            rows.append({**campaign, "measure": measure, "value": lift[measure]})
    rows.extend(_uplift_rows(c))
    for step in c.steps:
        f = step.funnel
        where = {**campaign, "step": step.key, "group": TREATED}
        values: dict[str, Any] = {name: getattr(f, name) for name in MAIL_MEASURES}
        values |= {
            "put_on_call_list": f.calls,
            "credited": f.reactivated,
            "revenue": money(f.revenue),
        }
        rows.extend({**where, "measure": m, "value": v} for m, v in values.items())
    return rows


def _uplift_rows(c: CampaignResult) -> list[dict[str, Any]]:
    """Per segment and per rhythm class (``subgroup``): who entered and came back in each
    group, and the uplift; each grouping has its own measures, so no sum counts twice."""
    rows: list[dict[str, Any]] = []
    groups = [*c.uplift.segments, *c.uplift.rhythms] if c.uplift else []
    for g in groups:
        at = {"campaign": c.campaign_id, "subgroup": g.label}
        name = g.grouping
        for group, entered, back in (
            (TREATED, g.treated, g.treated_came_back),
            (HELD_OUT, g.held_out, g.held_out_came_back),
        ):
            rows.append({**at, "group": group, "measure": f"{name}_entered", "value": entered})
            rows.append({**at, "group": group, "measure": f"{name}_came_back", "value": back})
        fields = uplift_fields(g)
        for measure in ("uplift_points", "ci_low_points", "ci_high_points", "verdict_kind"):
            if fields[measure] is not None:
                rows.append({**at, "measure": f"{name}_{measure}", "value": fields[measure]})
        rows.append({**at, "measure": f"{name}_verdict", "value": g.verdict})
    return rows


def _call_rows(calls: CallResults) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for r in calls.reasons:
        for scope in ("specific", "systemic", "unsure"):
            count = getattr(r, scope)
            if count:
                rows.append(
                    {"reason": r.reason, "scope": scope, "measure": "calls", "value": count}
                )
        unanswered = r.calls - r.specific - r.systemic - r.unsure  # "specific or systemic?"
        if unanswered:  # left out: an empty scope, not "unsure"
            rows.append({"reason": r.reason, "measure": "calls", "value": unanswered})
        rows.append(
            {"reason": r.reason, "measure": "value_at_risk", "value": money(r.value_at_risk)}
        )
    unexplained = calls.calls - sum(r.calls for r in calls.reasons)
    if unexplained:
        rows.append({"measure": "calls", "value": unexplained})
    if calls.reasons:
        rows.append({"measure": "value_at_risk_all", "value": money(calls.value_at_risk)})
    return rows


def to_csv(results: Results) -> str:
    """Results as one tidy CSV table (see the module's docstring)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(results):
        if row["measure"] in MONEY_MEASURES:  # 0.00 and 269.50, never 0.0 or 269.5
            row = {**row, "value": f"{row['value']:.2f}"}
        writer.writerow(row)
    return out.getvalue()
