"""Time helpers shared by import, detection and campaigns: parsing and UTC normalisation.

Everything stored is an aware UTC ``datetime``; naive input is read in the business zone.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from zoneinfo import ZoneInfo

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([wdhm])\s*$")
_UNIT = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60}


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
    return value.astimezone(UTC)


def parse_date(text: str) -> date:
    """Parse an ISO date (2024-03-31) or a yearless one (03-31, stored in year 2000)."""
    raw = text.strip()
    try:
        if len(raw) == 5:
            return date.fromisoformat(f"2000-{raw}")
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a date like 1975-04-12 or 04-12") from None


def parse_duration(text: str) -> timedelta:
    """Parse ``7d``, ``36h``, ``2w`` or ``90m`` into a timedelta."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 7d or 36h")
    return timedelta(seconds=float(match.group(1)) * _UNIT[match.group(2)])


def as_utc(value: datetime) -> datetime:
    """Treat a naive datetime as UTC (how the database hands them back); convert aware ones."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def days_between(earlier: datetime, later: datetime) -> float:
    """Fractional days from ``earlier`` to ``later``."""
    return (as_utc(later) - as_utc(earlier)).total_seconds() / 86400.0
