"""When a campaign's steps go out: send windows, holidays and the frequency cap. Pure.

Both the daemon and ``reengage simulate`` ask these functions; each takes ``now`` (or the
due time) and never reads a clock, so a month can be replayed in a moment.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from reengage.campaigns import WEEKDAYS, WINDOW_SEARCH_DAYS, Campaign, Condition, SendWindow


def window_zone(window: SendWindow, recipient_zone: str | None, fallback: ZoneInfo) -> ZoneInfo:
    """The zone the window's hours are read in: the recipient's, or the one named."""
    if window.timezone != "recipient":
        return ZoneInfo(window.timezone)
    if recipient_zone:
        try:
            return ZoneInfo(recipient_zone)
        except (KeyError, ValueError):
            return fallback
    return fallback


def next_send_time(window: SendWindow, zone: ZoneInfo, due: datetime) -> datetime:
    """The first moment at or after ``due`` inside the window (UTC).

    Skips weekdays not listed and the holidays in ``skip_dates``; a time before opening
    moves to opening, after closing to the next open day's opening.
    """
    opening, closing = window.bounds()
    local = due.astimezone(zone)
    for _ in range(WINDOW_SEARCH_DAYS):  # a window shut longer than this does not load
        day = local.date()
        allowed = WEEKDAYS[day.weekday()] in window.days and day not in window.skip_dates
        if allowed:
            start = datetime.combine(day, opening, zone)
            end = datetime.combine(day, closing, zone)
            if local < start:
                return start.astimezone(UTC)
            if local < end:
                return local.astimezone(UTC)
        local = datetime.combine(day + timedelta(days=1), opening, zone)
    raise ValueError("the send window never opens within a year")


class FrequencyCap:
    """At most ``limit`` mails per customer in any rolling ``period`` across all campaigns."""

    def __init__(self, limit: int, period: timedelta) -> None:
        self.limit, self.period = limit, period
        self._sent: dict[object, deque[datetime]] = {}

    def next_allowed(self, customer: object, at: datetime) -> datetime:
        """The earliest time at or after ``at`` when one more mail stays under the cap."""
        sent = self._sent.get(customer)
        if not sent or self.limit <= 0:
            return at
        recent = [t for t in sent if t > at - self.period]
        if len(recent) < self.limit:
            return at
        return recent[-self.limit] + self.period

    def record(self, customer: object, at: datetime) -> None:
        """Count a mail sent (or planned) at ``at``."""
        sent = self._sent.setdefault(customer, deque())
        sent.append(at)
        while sent and sent[0] <= at - self.period * 2:
            sent.popleft()


def condition_met(
    condition: Condition,
    campaign: Campaign,
    index: int,
    responses: set[tuple[str | None, str]],
) -> bool:
    """Whether a step's condition holds, from what the customer did with earlier mails.

    "Previous" is the last mail step before this one (call steps are passed over). A
    click counts as an open: the mail was read even if its images were blocked.
    """
    previous = next((s.key for s in reversed(campaign.steps[:index]) if not s.is_call), None)
    did = {kind for step_key, kind in responses if step_key == previous}
    opened = bool(did & {"open", "click", "reply"})
    if condition is Condition.PREVIOUS_OPENED:
        return opened
    if condition is Condition.PREVIOUS_NOT_OPENED:
        return not opened
    if condition is Condition.PREVIOUS_NOT_CLICKED:
        return "click" not in did
    return not any(kind == "reply" for _, kind in responses)  # NO_REPLY: to any mail
