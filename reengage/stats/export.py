"""Results as data: a JSON document and one flat CSV table, for spreadsheets and scripts.

The CSV is a single rectangular table, one row per campaign, per step and per call cause,
told apart by its ``row`` column, so it filters and pivots in a spreadsheet as it is.
Rates and lift are in percentage points, money as plain numbers.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, fields
from typing import Any

from reengage.stats.intervals import Lift
from reengage.stats.results import OPENS_NOTE, CampaignResult, Funnel, Results

FUNNEL_FIELDS = [f.name for f in fields(Funnel)]
LIFT_FIELDS = [
    "treated",
    "treated_reactivated",
    "held_out_reactivated",
    "treated_rate",
    "held_out_rate",
    "lift_points",
    "ci_low_points",
    "ci_high_points",
    "verdict_kind",
    "verdict",
]
CSV_COLUMNS = [
    "row",
    "campaign",
    "step",
    "enrolled",
    "held_out",
    *FUNNEL_FIELDS,
    *LIFT_FIELDS,
    "reason",
    "scope",
    "value_at_risk",
]


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def lift_fields(found: Lift) -> dict[str, Any]:
    """A lift as flat fields, in percentage points."""
    interval = found.interval
    return {
        "treated": found.treated,
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
    """Results as a JSON-ready document (dates as ISO strings)."""
    return {
        "generated_at": results.generated_at.isoformat(),
        "since": results.since.isoformat() if results.since else None,
        "campaign": results.campaign,
        "lift_horizon_days": results.horizon.total_seconds() / 86400,
        "notes": {"opened": OPENS_NOTE},
        "campaigns": [_campaign_json(c) for c in results.campaigns],
        "calls": asdict(results.calls),
    }


def _campaign_json(c: CampaignResult) -> dict[str, Any]:
    return {
        "campaign": c.campaign_id,
        "enrolled": c.enrolled,
        "held_out": c.held_out,
        **asdict(c.funnel),
        "held_out_revenue": c.held_out_revenue,
        "lift": lift_fields(c.lift),
        "steps": [{"step": s.key, **asdict(s.funnel)} for s in c.steps],
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


def to_csv(results: Results) -> str:
    """Results as one CSV table (see the module's docstring)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for c in results.campaigns:
        writer.writerow(
            {
                "row": "campaign",
                "campaign": c.campaign_id,
                "enrolled": c.enrolled,
                "held_out": c.held_out,
                **asdict(c.funnel),
                **lift_fields(c.lift),
            }
        )
        for s in c.steps:
            writer.writerow(
                {"row": "step", "campaign": c.campaign_id, "step": s.key, **asdict(s.funnel)}
            )
    for r in results.calls.reasons:
        for scope in ("specific", "systemic", "unsure"):
            count = getattr(r, scope)
            if count:
                writer.writerow(
                    {"row": "calls", "reason": r.reason, "scope": scope, "calls": count}
                )
        writer.writerow(
            {
                "row": "calls",
                "reason": r.reason,
                "scope": "all",
                "calls": r.calls,
                "value_at_risk": r.value_at_risk,
            }
        )
    return out.getvalue()
