"""What a campaign file may say: the campaign, who enters it and when its mail may go out,
validated by pydantic; its steps are in :mod:`reengage.campaigns.steps`.

Every check that can be made without other files is made here, so that a campaign that
loads can always be run: a send window that opens, durations a date can be computed from,
numbers that are finite. :mod:`reengage.campaigns.files` turns the errors into messages.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from reengage.campaigns.filters import FilterRule
from reengage.campaigns.steps import DEFAULT as DEFAULT  # re-exported for older importers
from reengage.campaigns.steps import SLUG, Condition, Step, Strict
from reengage.campaigns.steps import subject_key as subject_key  # re-exported, likewise

# -- small value types -------------------------------------------------------------------

_ADDRESS = re.compile(
    r'^(?:"?[^"<>\r\n]*"?\s*<[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+>|[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+)$'
)
_LONGEST_ADDRESS = 400  # RFC 5321 allows 254 for the address, plus a display name
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# How far ahead reengage.sendtimes.next_send_time looks for an open day; a window shut for
# that long is refused when its file loads, so the search always finds one.
WINDOW_SEARCH_DAYS = 366
_LONGEST_CAMPAIGN = timedelta(days=3653)
_ON_OPENS = (
    Condition.PREVIOUS_OPENED,
    Condition.PREVIOUS_NOT_OPENED,
)  # ten years of steps: dates stay computable


def _workdays() -> list[Weekday]:
    return ["mon", "tue", "wed", "thu", "fri"]


class ExitReason(StrEnum):
    """What ends a customer's enrollment early."""

    ACTIVITY = "activity"
    PURCHASE = "purchase"
    REPLY = "reply"
    CLICK = "click"
    UNSUBSCRIBE = "unsubscribe"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    CALL_OUTCOME = "call_outcome"


# -- audience ------------------------------------------------------------------------------


class LapseRule(Strict):
    """Who counts as lapsed for this campaign."""

    factor: float = Field(
        2.0, gt=0, le=1000, allow_inf_nan=False, description="silent for this many of their gaps"
    )
    min_days_silent: float = Field(0.0, ge=0, le=36_500, allow_inf_nan=False)
    max_days_silent: float | None = Field(None, gt=0, le=36_500, allow_inf_nan=False)
    min_score: float = Field(0.0, ge=0, le=1, allow_inf_nan=False)

    @model_validator(mode="after")
    def _range(self) -> LapseRule:
        if self.max_days_silent is not None and self.max_days_silent < self.min_days_silent:
            raise ValueError("max_days_silent is below min_days_silent")
        return self


class DeclineRule(Strict):
    """Shrinking customers: a ratio (recent ÷ before) at or below a threshold."""

    count_below: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    aov_below: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    margin_below: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)


class Audience(Strict):
    """Who enters: lapsed and/or declining customers, narrowed by filters."""

    lapsed: LapseRule | None = None
    declining: DeclineRule | None = None
    where: list[FilterRule] = Field(default_factory=list)
    # Prefer customers whom contact helps: a customer whose segment's measured uplift (the
    # point estimate, treated against held out: reengage.uplift) is below this is not
    # enrolled; a segment with too little data to say is enrolled as before.
    min_uplift: float | None = None

    @field_validator("min_uplift", mode="before")
    @classmethod
    def _uplift(cls, value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool):
            raise ValueError(
                f"expected a number between -1 and 1, not {str(value).lower()} (YAML reads "
                "yes/no/on/off as true/false)"
            )
        if not isinstance(value, int | float):
            raise ValueError(
                f"expected a number between -1 and 1, not {value!r}: an uplift is a share, "
                "so 0.05 means five percentage points"
            )
        if not -1.0 <= float(value) <= 1.0:  # also refuses .nan
            raise ValueError(
                f"{value!r} is not between -1 and 1: an uplift is a share of customers, so "
                f"write {float(value) / 100:g} for {value:g} percentage points"
                if 1 < abs(float(value)) <= 100
                else f"{value!r} is not between -1 and 1: an uplift is a share of customers, "
                "so 0.05 means five percentage points"
            )
        return float(value)

    @model_validator(mode="after")
    def _some_rule(self) -> Audience:
        if self.lapsed is None and self.declining is None and not self.where:
            raise ValueError("give at least one of lapsed, declining or where")
        return self


# -- sending -------------------------------------------------------------------------------

_HOURS = re.compile(r"([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})")


def _skip_date(value: Any) -> date:
    # A day YAML could not read (2026-02-30) arrives as its text: say what is wrong with it.
    if isinstance(value, datetime):
        raise ValueError(
            f"{value:%Y-%m-%d %H:%M} has a time of day; list whole days like 2026-12-25"
        )
    if isinstance(value, date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}\s*", value):
        try:
            return date.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(
                f"{value.strip()!r} is not a day in the calendar ({exc}); "
                "write days like 2026-12-25"
            ) from None
    raise ValueError(f"{value!r} is not a date like 2026-12-25")


class SendWindow(Strict):
    """When mail may go out, in the recipient's local time unless a zone is named."""

    hours: str = "09:00-17:00"
    days: list[Weekday] = Field(default_factory=_workdays)
    timezone: str = "recipient"
    skip_dates: list[Annotated[date, BeforeValidator(_skip_date)]] = Field(
        default_factory=list, description="holidays: no sends"
    )

    @field_validator("hours", mode="before")
    @classmethod
    def _hours(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(
                f'write the hours as a range in quotes, like "09:00-17:00" (YAML read {value!r})'
            )
        match = _HOURS.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"{value!r} is not a time range like 09:00-17:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or m2 > 59:
            raise ValueError(
                f"{value!r} is not a time range like 09:00-17:00: times run from 00:00 to 23:59"
            )
        if (h2, m2) > (24, 0):
            raise ValueError(
                f"{value!r} closes after midnight: the latest closing time is 24:00 "
                "(a window cannot run into the next day)"
            )
        if (h1, m1) >= (h2, m2):
            raise ValueError(
                f"{value!r} closes before it opens: write the opening time first, like "
                "09:00-17:00 (a window cannot run past midnight)"
            )
        return f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value != "recipient":
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                raise ValueError(
                    f"{value!r} is not 'recipient' or an IANA time zone like Europe/Berlin"
                ) from None
        return value

    @field_validator("days")
    @classmethod
    def _some_day(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one weekday (mon … sun)")
        return value

    @model_validator(mode="after")
    def _opens(self) -> SendWindow:
        spell = self.longest_shut_spell()
        if spell is not None and (spell[1] - spell[0]).days + 1 >= WINDOW_SEARCH_DAYS - 1:
            first, last = spell
            raise ValueError(
                f"the window never opens from {first} to {last}: every "
                f"{', '.join(self.days)} in between is in skip_dates, so a mail due then "
                "could never be sent; remove some of those dates"
            )
        return self

    def bounds(self) -> tuple[time, time]:
        """Opening and closing time of day."""
        start, end = self.hours.split("-")
        closing = time(23, 59, 59) if end == "24:00" else time.fromisoformat(end)
        return time.fromisoformat(start), closing

    def longest_shut_spell(self) -> tuple[date, date] | None:
        """The longest run of days on which the window never opens because of ``skip_dates``.

        ``None`` when no listed day falls on an allowed weekday. Outside the skipped dates an
        allowed weekday comes round every week, so only runs of skipped ones can be long.
        """
        allowed = {WEEKDAYS.index(day) for day in self.days}
        skipped = sorted({d for d in self.skip_dates if d.weekday() in allowed})
        best: tuple[date, date] | None = None
        start = 0
        for index, day in enumerate(skipped):
            last = index + 1 == len(skipped)
            if not last and skipped[index + 1] == _step_to(day, allowed, +1):
                continue  # the next allowed day is skipped too: the spell goes on
            before = _step_to(skipped[start], allowed, -1)
            after = _step_to(day, allowed, +1)
            first = before + timedelta(days=1) if before < skipped[start] else before
            final = after - timedelta(days=1) if after > day else after
            if best is None or (final - first) > (best[1] - best[0]):
                best = (first, final)
            start = index + 1
        return best


def _step_to(day: date, allowed: set[int], direction: int) -> date:
    """The nearest allowed weekday before (-1) or after (+1) ``day``; the calendar's edge
    if there is none."""
    for distance in range(1, 8):
        try:
            candidate = day + timedelta(days=direction * distance)
        except OverflowError:
            return day
        if candidate.weekday() in allowed:
            return candidate
    return day


class Campaign(Strict):
    """A campaign as its YAML file describes it."""

    id: str
    name: str = Field(min_length=1, max_length=200)
    enabled: bool = True
    priority: int = Field(
        0, ge=-1_000_000, le=1_000_000, description="higher wins when campaigns want a customer"
    )
    audience: Audience | None = Field(
        None, description="None: customers enter only by a rep's call outcome or the API"
    )
    not_enrolled_within_days: int = Field(90, ge=0, le=3650)
    holdout_percent: float = Field(10.0, ge=0, le=50, allow_inf_nan=False)
    exit_on: list[ExitReason] = Field(
        default_factory=lambda: [
            ExitReason.ACTIVITY,
            ExitReason.REPLY,
            ExitReason.UNSUBSCRIBE,
            ExitReason.BOUNCE,
            ExitReason.COMPLAINT,
        ]
    )
    allow_parallel: bool = Field(False, description="may run beside another campaign")
    track_opens: bool = Field(
        False, description="count opens with an image the mail app loads (see the README)"
    )
    send_window: SendWindow = Field(default_factory=SendWindow)
    sender: str = Field(alias="from")
    reply_to: str | None = None
    steps: list[Step] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError(f"{value!r} is not an id like habit-lapsed-tips")
        return value

    @field_validator("sender", "reply_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        # Checked for length first: the pattern takes quadratic time on a long enough text.
        if value is not None and len(value) > _LONGEST_ADDRESS:
            raise ValueError(
                f"is {len(value)} characters long; a name and address fit in {_LONGEST_ADDRESS}"
            )
        if value is not None and not _ADDRESS.match(value.strip()):
            raise ValueError(f'{value!r} is not an address like "Acme <hello@acme.example>"')
        return value.strip() if value else value

    @field_validator("steps")
    @classmethod
    def _unique_keys(cls, steps: list[Step], info: ValidationInfo) -> list[Step]:
        seen: set[str] = set()
        for step in steps:
            if step.key in seen:
                raise ValueError(f"step key {step.key!r} is used twice; keys must be unique")
            seen.add(step.key)
        for step in steps:  # a condition on opens none are counted for never changes
            if step.condition in _ON_OPENS and not info.data.get("track_opens"):
                raise ValueError(
                    f"step {step.key!r} has condition {step.condition}, but this campaign "
                    "does not count opens: add track_opens: true, or use "
                    "previous_not_clicked or no_reply"
                )
        total = sum((step.after for step in steps), timedelta(0))
        if total > _LONGEST_CAMPAIGN:
            raise ValueError(
                f"the steps' after: add up to {total.days} days; a campaign lasts ten years "
                "at most — shorten some of them"
            )
        return steps

    def step(self, key: str) -> Step | None:
        """The step with ``key``, if the campaign still has it."""
        return next((s for s in self.steps if s.key == key), None)

    def in_holdout(self, customer_key: str) -> bool:
        """Deterministic control-group membership: the same answer on every run."""
        digest = hashlib.sha256(f"{self.id}\x1f{customer_key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % 10_000 < self.holdout_percent * 100
