"""Time helpers shared by import, detection and campaigns: parsing and UTC normalisation.

Everything stored is an aware UTC ``datetime``; naive input is read in the business zone.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from zoneinfo import ZoneInfo

_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]+)\s*")
_SECONDS = {
    **dict.fromkeys(("w", "week", "weeks"), 7 * 86400),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("h", "hour", "hours"), 3600),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), 60),
}
_MONTHS, _YEARS = ("mo", "mon", "month", "months"), ("y", "yr", "yrs", "year", "years")
_SECONDS_UNITS = ("s", "sec", "secs", "second", "seconds")
_LONGEST = timedelta(days=36_525)  # a hundred years: past it, dates stop being computable
_FORMS = "like 7d or 36h (units: w, d, h, min)"


class _Origin:
    # Set once at start-up from REENGAGE_NOW (see pin_clock); None reads the real clock.
    pinned: tuple[datetime, float] | None = None


def pin_clock(moment: datetime) -> None:
    """Start this process's clock at ``moment``; from then on it runs forward at real speed.

    For tests and rehearsals (``REENGAGE_NOW``): a command run as a subprocess sees the hour,
    date or DST change a test chose, and a daemon started that way still ticks.
    """
    _Origin.pinned = (moment.astimezone(UTC), monotonic())


def utcnow() -> datetime:
    """The current time, aware, in UTC. Only edges (CLI, scheduler) call this; policy takes now."""
    if _Origin.pinned is not None:
        start, at = _Origin.pinned
        return start + timedelta(seconds=monotonic() - at)
    return datetime.now(UTC)


def parse_timestamp(text: str, zone: ZoneInfo) -> datetime:
    """Parse an ISO date or datetime; naive values are in ``zone``. Returns aware UTC.

    Raises ValueError with a message fit for a person.
    """
    return read_timestamp(text, zone)[0]


def read_timestamp(text: str, zone: ZoneInfo) -> tuple[datetime, str | None]:
    """:func:`parse_timestamp`, and a note when a naive value falls in a DST change in
    ``zone`` and so names no moment or two (see :func:`dst_note`); None otherwise."""
    raw = text.strip()
    if not raw:
        raise ValueError("is empty; expected an ISO date like 2024-03-31 or 2024-03-31T14:05")
    try:
        if len(raw) == 10:
            value = datetime.combine(date.fromisoformat(raw), time(0), zone)
        else:
            value = datetime.fromisoformat(raw.replace(" ", "T", 1))
            if value.tzinfo is None:
                value = value.replace(tzinfo=zone)
    except ValueError:
        raise ValueError(
            f"{raw!r} is not an ISO date like 2024-03-31 or 2024-03-31T14:05:00+02:00"
        ) from None
    note = None
    if value.tzinfo is zone and value.replace(fold=1).utcoffset() != value.utcoffset():
        note = dst_note(raw, value, zone)
    return value.astimezone(UTC), note


def dst_note(raw: str, local: datetime, zone: ZoneInfo) -> str:
    """What a local time inside a DST change was read as, and how to say otherwise.

    ``local`` (in ``zone``, ``fold=0``) is in a spring-forward gap — it never happened, and
    is read with the offset from before the change, so it lands as far past the gap's start
    as it was written (02:30 becomes 03:30 summer time) — or in the hour a fall-back repeats,
    read as its first occurrence (summer time)."""
    moment = local.astimezone(UTC)
    again = moment.astimezone(zone)
    first, second = local.utcoffset(), local.replace(fold=1).utcoffset()
    assert first is not None and second is not None  # a ZoneInfo always has an offset
    hour = _span(abs(first - second))
    if again.replace(tzinfo=None) != local.replace(tzinfo=None):  # the gap
        written = f"{raw!r} (midnight)" if len(raw) == 10 else repr(raw)
        return (
            f"{written} does not exist in {zone.key} (the clocks went forward {hour} that "
            f"night): read as {again:%H:%M} {again:%Z} ({moment:%Y-%m-%d %H:%M} UTC), "
            f"{hour} later than written; give the time with its UTC offset if it was "
            "another moment"
        )
    later = local.replace(fold=1).isoformat(timespec="minutes")
    return (
        f"{raw!r} happened twice in {zone.key} (the clocks went back {hour} that night): "
        f"read as the first, {again:%H:%M} {again:%Z} ({moment:%Y-%m-%d %H:%M} UTC); "
        f"write {later} if it was the second"
    )


def _span(shift: timedelta) -> str:
    minutes = round(shift.total_seconds() / 60)
    if minutes == 60:
        return "an hour"
    return f"{minutes // 60} h {minutes % 60} min" if minutes > 60 else f"{minutes} min"


# A yearly date whose year is unknown (a birthday given as 04-12) is stored in this year;
# it is never shown (a leap year, so 29 February can be stored).
UNKNOWN_YEAR = 2000


def parse_date(text: str) -> date:
    """Parse an ISO date (2024-03-31) or a yearless one (03-31, stored in UNKNOWN_YEAR)."""
    raw = text.strip()
    try:
        if len(raw) == 5:
            return date.fromisoformat(f"{UNKNOWN_YEAR}-{raw}")
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a date like 1975-04-12 or 04-12") from None


def parse_duration(text: str) -> timedelta:
    """Parse ``2w``, ``7d``, ``36h`` or ``90min`` into a timedelta.

    The one reading of a duration, for a campaign step's ``after:`` and for every command
    line option that takes one (``--since 30d``, ``--horizon 90d``). A bare ``m`` is refused:
    a marketer writing ``1m`` may mean a month. Raises ValueError with the fix.
    """
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration {_FORMS}")
    number, unit = float(match.group(1)), match.group(2).lower()
    written, count = text.strip(), _plain(number)
    if unit == "m":
        months = (
            "30d for a month"
            if number == 1 or number > 12  # 90m is surely not seven years
            else f"{_plain(number * 30)}d for {count} months"
        )
        raise ValueError(f"{written!r} is ambiguous: write {count}min for minutes or {months}")
    if unit in _MONTHS:
        raise ValueError(f"{written!r}: months differ in length; write {_plain(number * 30)}d")
    if unit in _YEARS:
        raise ValueError(f"{written!r}: write {_plain(number * 365)}d")
    if unit in _SECONDS_UNITS:
        raise ValueError(f"{written!r}: the shortest unit is min (minutes), like 1min")
    if unit not in _SECONDS:
        raise ValueError(f"{text!r} is not a duration {_FORMS}")
    seconds = number * _SECONDS[unit]
    if seconds > _LONGEST.total_seconds():
        raise ValueError(f"{written!r} is longer than a hundred years")
    return timedelta(seconds=seconds)


def _plain(number: float) -> str:
    return str(int(number)) if number.is_integer() else f"{number:.2f}".rstrip("0")


def parse_since(text: str, now: datetime, zone: ZoneInfo) -> datetime:
    """A starting point: a time ago (``30d``, ``12h``, ``90min``) or a date or datetime.

    A date is midnight in ``zone``; the result is aware UTC. Raises ValueError naming both
    forms, or a duration's own problem (``'1m' is ambiguous …``) when it looks like one.
    """
    raw = text.strip()
    if _DURATION.fullmatch(raw):
        return now - parse_duration(raw)
    try:
        return parse_timestamp(raw, zone)
    except ValueError:
        raise ValueError(
            f"{raw!r} is not a date like 2026-01-31 or a time ago like 30d, 12h or 90min"
        ) from None


def as_utc(value: datetime) -> datetime:
    """Treat a naive datetime as UTC (how the database hands them back); convert aware ones."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def days_between(earlier: datetime, later: datetime) -> float:
    """Fractional days from ``earlier`` to ``later``."""
    return (as_utc(later) - as_utc(earlier)).total_seconds() / 86400.0


def days_later(moment: datetime, days: int, zone: ZoneInfo) -> datetime:
    """The same wall-clock time ``days`` calendar days after ``moment`` in ``zone`` (23 or
    25 hours for a day with a DST change; a time the change skips moves forward by the
    gap, a time it repeats is its first occurrence)."""
    local = moment.astimezone(zone).replace(tzinfo=None) + timedelta(days=days)
    return local.replace(tzinfo=zone).astimezone(UTC)  # fold 0: before the change's offset
