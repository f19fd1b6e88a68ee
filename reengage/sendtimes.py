"""When a campaign's steps go out: send windows, holidays and the frequency cap. Pure.

Both the daemon and ``reengage simulate`` ask these functions; each takes ``now`` (or the
due time) and never reads a clock, so a month can be replayed in a moment.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from reengage.campaigns import WEEKDAYS, WINDOW_SEARCH_DAYS, Campaign, Condition, SendWindow
from reengage.errors import WindowNeverOpens


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
    moves to opening, after closing to the next open day's opening. The hours are read off
    the recipient's wall clock, as they would read it: on the night clocks spring forward an
    opening inside the skipped hour opens when the clock jumps, and in the hour that comes
    twice in autumn the window is open both times round. ``24:00`` is the end of the day.
    """
    opening, closing = _wall_bounds(window)
    due = due.astimezone(UTC)
    day = due.astimezone(zone).date()
    for _ in range(WINDOW_SEARCH_DAYS + 1):  # a window shut longer than this does not load
        if WEEKDAYS[day.weekday()] in window.days and day not in window.skip_dates:
            found = _first_open_on(day, opening, closing, zone, due)
            if found is not None:
                return found
        day += timedelta(days=1)
    raise WindowNeverOpens("the send window never opens within a year")


def _wall_bounds(window: SendWindow) -> tuple[time, time | None]:
    # Opening and closing wall-clock times; None closes at the end of the day (24:00).
    start, end = window.hours.split("-")
    return time.fromisoformat(start), None if end == "24:00" else time.fromisoformat(end)


def _first_open_on(
    day: date, opening: time, closing: time | None, zone: ZoneInfo, due: datetime
) -> datetime | None:
    """The earliest moment at or after ``due`` when the wall clock reads ``day`` between
    ``opening`` and ``closing``, or None if there is none that day."""
    start = datetime.combine(day, time(0), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
    if due >= end:
        return None
    if start.astimezone(zone).utcoffset() == (end - _TICK).astimezone(zone).utcoffset():
        # No clock change that day: the wall clock runs with UTC, so the bounds are exact.
        low = datetime.combine(day, opening, zone).astimezone(UTC)
        high = end if closing is None else datetime.combine(day, closing, zone).astimezone(UTC)
        moment = max(low, due)
        return moment if moment < high else None
    # The clock changes this day (a few nights a year): try ``due``, then each whole minute
    # of the day, reading the wall clock as the recipient would. Offsets are whole minutes,
    # so whether a moment is inside only changes on a whole minute.
    moment = max(start, due)
    if _reads(moment, day, opening, closing, zone):
        return moment
    moment = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while moment < end:
        if _reads(moment, day, opening, closing, zone):
            return moment
        moment += timedelta(minutes=1)
    return None


def _reads(
    moment: datetime, day: date, opening: time, closing: time | None, zone: ZoneInfo
) -> bool:
    wall = moment.astimezone(zone)
    clock = wall.time()
    return wall.date() == day and opening <= clock and (closing is None or clock < closing)


_TICK = timedelta(microseconds=1)


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


def next_step(campaign: Campaign, index: int, after: datetime) -> tuple[int, str, datetime] | None:
    """The step after step ``index`` and when it falls due (its ``after`` from ``after``), or
    None when that was the last."""
    if index + 1 >= len(campaign.steps):
        return None
    step = campaign.steps[index + 1]
    return index + 1, step.key, after + step.after
