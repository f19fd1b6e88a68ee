"""Campaign files: the YAML a marketer writes, validated into :class:`Campaign` objects.

Every problem is reported as ``FILE:LINE: field.path: what is wrong and what was expected``
(``campaigns/habit.yaml:14: steps[1].after: '7dd' is not a duration like 7d or 36h``).
Unknown keys are errors, with a "did you mean" when one is close. A broken file — whatever
it holds, whatever it is — is reported and skipped; the others load. Audience filters are a
small declarative language parsed here, never evaluated as Python.

:mod:`.model` holds what a file may say, its steps in :mod:`.steps`; :mod:`.filters` the
filter language, :mod:`.source` the reading of bytes into YAML data, :mod:`.files` the
loading and messages.
"""

from reengage.campaigns.files import (
    LoadResult,
    Problem,
    load_campaign,
    load_campaigns,
    parse_campaign,
)
from reengage.campaigns.filters import FILTER_FIELDS, Filter, FilterRule, parse_filter
from reengage.campaigns.model import (
    WEEKDAYS,
    WINDOW_SEARCH_DAYS,
    Audience,
    Campaign,
    DeclineRule,
    ExitReason,
    LapseRule,
    SendWindow,
    Weekday,
)
from reengage.campaigns.steps import DEFAULT, CallSpec, Condition, Duration, Step

__all__ = [
    "DEFAULT",
    "FILTER_FIELDS",
    "WEEKDAYS",
    "WINDOW_SEARCH_DAYS",
    "Audience",
    "CallSpec",
    "Campaign",
    "Condition",
    "DeclineRule",
    "Duration",
    "ExitReason",
    "Filter",
    "FilterRule",
    "LapseRule",
    "LoadResult",
    "Problem",
    "SendWindow",
    "Step",
    "Weekday",
    "load_campaign",
    "load_campaigns",
    "parse_campaign",
    "parse_filter",
]
