"""Reps' working days: which local dates get a morning digest, and where a call lands.

A working day is a weekday named in ``REENGAGE_DIGEST_DAYS`` (``mon-fri`` by default) that
is not one of ``REENGAGE_DIGEST_SKIP_DATES`` (holidays). Days are the rep's own dates, in
the rep's time zone. No digest goes out on any other day; a call due then (a campaign's
``call`` step, a "call again on D") is on the next working day's list.

Pure policy: every function takes the day or the moment it is asked about, never the clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
DAYS_FORM = "weekdays as mon-fri, mon,tue,thu or mon-sat (mon tue wed thu fri sat sun)"
DATES_FORM = (
    "dates as 2026-12-25,2026-12-26, or the path of a file with one such date a line "
    "(# starts a comment)"
)


@dataclass(frozen=True)
class WorkingDays:
    """The weekdays reps work (0 = Monday) and the dates they do not (holidays)."""

    weekdays: frozenset[int] = frozenset(range(5))
    skip: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not self.weekdays:
            raise ValueError("at least one weekday must be a working day")

    def is_working(self, day: date) -> bool:
        """Whether ``day`` is a working day."""
        return day.weekday() in self.weekdays and day not in self.skip

    def next_working_day(self, day: date) -> date:
        """``day`` itself when it is a working day, else the first working day after it."""
        # Terminates: some weekday works, and only finitely many dates are skipped.
        while not self.is_working(day):
            day += timedelta(days=1)
        return day

    def describe(self, today: date | None = None) -> str:
        """The days in words, e.g. ``mon-fri, not 2026-12-25, 2026-12-26`` (skip dates
        from ``today`` on when given; those already past are not worth showing)."""
        ahead = sorted(d for d in self.skip if today is None or d >= today)
        shown = ", ".join(d.isoformat() for d in ahead[:5])
        more = f" and {len(ahead) - 5} more" if len(ahead) > 5 else ""
        return format_weekdays(self.weekdays) + (f", not {shown}{more}" if ahead else "")


def parse_weekdays(text: str) -> frozenset[int]:
    """``mon-fri``, ``mon,tue,thu`` or ``sun-tue,fri`` as weekday numbers (0 = Monday); a
    ValueError names the part not understood and the form expected."""
    found: set[int] = set()
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        first, dash, last = (s.strip() for s in part.partition("-"))
        if first not in WEEKDAYS or (dash and last not in WEEKDAYS):
            raise ValueError(f"{part!r} is not understood: write {DAYS_FORM}")
        start, end = WEEKDAYS.index(first), WEEKDAYS.index(last if dash else first)
        found.update((start + i) % 7 for i in range((end - start) % 7 + 1))  # sat-mon wraps
    if not found:
        raise ValueError(f"names no day: write {DAYS_FORM}")
    return frozenset(found)


def format_weekdays(weekdays: Iterable[int]) -> str:
    """Weekday numbers as the shortest text :func:`parse_weekdays` reads (``mon-fri``)."""
    days = sorted(set(weekdays))
    runs: list[list[int]] = []
    for day in days:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    if len(runs) > 1 and runs[0][0] == 0 and runs[-1][-1] == 6:  # sat-mon, not mon,sat-sun
        runs[0] = runs.pop() + runs[0]
    return ",".join(
        WEEKDAYS[r[0]] if len(r) == 1 else f"{WEEKDAYS[r[0]]}-{WEEKDAYS[r[-1]]}" for r in runs
    )


def parse_skip_dates(text: str) -> frozenset[date]:
    """``2026-12-25,2026-12-26`` as dates; a value not starting with a digit is the path of
    a file with one date a line (``#`` comments). A ValueError names the bad part."""
    text = text.strip()
    if not text:
        return frozenset()
    if not text[0].isdigit():
        path = Path(text).expanduser()
        try:
            content = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(
                f"cannot read the file {text!r}: {exc.strerror}; write {DATES_FORM}"
            ) from exc
        return frozenset(
            _date(line.partition("#")[0].strip(), f"{text}:{number}: ")
            for number, line in enumerate(content.splitlines(), 1)
            if line.partition("#")[0].strip()
        )
    return frozenset(_date(part.strip(), "") for part in text.split(",") if part.strip())


def _date(text: str, where: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{where}{text!r} is not a date like 2026-12-25") from None


def digest_day(
    now: datetime, zone: ZoneInfo, days: WorkingDays, hour: int, window_hours: int
) -> date | None:
    """The rep's local date whose digest may go out at ``now``, or None: before the rep's
    morning, past its window, or on a day the rep does not work."""
    local = now.astimezone(zone)
    if not hour <= local.hour < hour + window_hours:
        return None
    return local.date() if days.is_working(local.date()) else None
