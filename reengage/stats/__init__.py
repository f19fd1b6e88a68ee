"""Results a marketer can believe: funnels, lift against the holdout with a proper
interval, and what reps heard on their calls.

``campaign_results(store, now, ...)`` is the use case behind ``reengage stats``, the
dashboard and the demo; ``intervals`` holds the pure statistics, ``export`` the JSON and
CSV shapes.
"""

from reengage.stats.export import to_csv, to_json
from reengage.stats.intervals import Interval, Lift, VerdictKind, lift, newcombe, wilson
from reengage.stats.results import (
    OPENS_NOTE,
    CallReason,
    CallResults,
    CampaignResult,
    Funnel,
    Results,
    StepResult,
    TimelinePoint,
    campaign_results,
    parse_since,
)

__all__ = [
    "OPENS_NOTE",
    "CallReason",
    "CallResults",
    "CampaignResult",
    "Funnel",
    "Interval",
    "Lift",
    "Results",
    "StepResult",
    "TimelinePoint",
    "VerdictKind",
    "campaign_results",
    "lift",
    "newcombe",
    "parse_since",
    "to_csv",
    "to_json",
    "wilson",
]
