"""What ``reengage simulate`` plans: each local day's entries, mails, calls and exits, and the
mails and entries themselves."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass
class DayPlan:
    """What would happen on one calendar day in the business zone."""

    day: date
    entered: Counter[str] = field(default_factory=Counter)
    held_out: Counter[str] = field(default_factory=Counter)
    mails: Counter[str] = field(default_factory=Counter)  # "campaign/step"
    calls: Counter[str] = field(default_factory=Counter)
    exits: Counter[str] = field(default_factory=Counter)  # "campaign: reason"

    @property
    def quiet(self) -> bool:
        """Nothing happens that day."""
        return not (self.entered or self.held_out or self.mails or self.calls or self.exits)


@dataclass(frozen=True, slots=True)
class PlannedMail:
    """One mail the plan sends: to whom, which step, when (UTC), read in which zone."""

    customer: str  # external id, as imported
    customer_id: int
    campaign_id: str
    step_key: str
    at: datetime
    zone: ZoneInfo  # where the send window's hours are read


@dataclass(frozen=True, slots=True)
class PlannedEntry:
    """A customer entering a campaign (or its holdout) during the plan."""

    customer: str
    campaign_id: str
    at: datetime
    held_out: bool


@dataclass
class Simulation:
    """A plan by local day, the mails and entries in it, who is left out and why, and what it
    assumes."""

    start: datetime
    end: datetime
    zone: ZoneInfo  # the business zone: ``days`` are its calendar dates
    days: list[DayPlan]
    mails: list[PlannedMail] = field(default_factory=list)
    entries: list[PlannedEntry] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # why someone never entered
    not_sent: Counter[str] = field(default_factory=Counter)  # "campaign/step: why"
    running: Counter[str] = field(default_factory=Counter)  # enrollments carried on
    waiting: Counter[str] = field(default_factory=Counter)  # held for a person: no mail
    examples: dict[str, list[str]] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    rendered: int = 0
    render_failures: list[str] = field(default_factory=list)
    calls_after: Counter[str] = field(default_factory=Counter)  # seen after the last day

    @classmethod
    def covering(cls, start: datetime, end: datetime, zone: ZoneInfo) -> Simulation:
        """An empty plan with one day for every local date from ``start`` to ``end``."""
        first = start.astimezone(zone).date()
        last = (end - timedelta(microseconds=1)).astimezone(zone).date()
        count = (last - first).days + 1
        return cls(start, end, zone, [DayPlan(first + timedelta(days=d)) for d in range(count)])

    def day(self, when: datetime) -> DayPlan:
        """The local day ``when`` (any moment in the plan) falls on."""
        return self.days[(when.astimezone(self.zone).date() - self.days[0].day).days]

    def on(self, day: date) -> DayPlan | None:
        """The plan's ``day``, or None when it comes after the plan's last day."""
        index = (day - self.days[0].day).days
        return self.days[index] if 0 <= index < len(self.days) else None
