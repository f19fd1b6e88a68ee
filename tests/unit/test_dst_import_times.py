"""A naive import time inside a DST change is never read silently: every minute of the
change nights of several zones, against a brute-force count of the moments that show that
local time on a clock (none: the gap; two: the repeated hour)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from reengage.timeutil import read_timestamp

NIGHTS = [
    ("Europe/Berlin", "2026-03-29"),  # 02:00 → 03:00
    ("Europe/Berlin", "2026-10-25"),  # 03:00 → 02:00
    ("America/New_York", "2026-03-08"),
    ("Australia/Lord_Howe", "2026-10-04"),  # half an hour forward
    ("America/Santiago", "2026-09-06"),  # forward at midnight: the date itself is in the gap
]


def moments_showing(local: datetime, zone: ZoneInfo) -> list[datetime]:
    """Every UTC minute within a day of ``local`` whose clock in ``zone`` reads ``local``."""
    start = local.replace(tzinfo=UTC) - timedelta(days=1)
    found = []
    for minute in range(0, 2 * 24 * 60):
        moment = start + timedelta(minutes=minute)
        if moment.astimezone(zone).replace(tzinfo=None) == local:
            found.append(moment)
    return found


@pytest.mark.parametrize(("name", "day"), NIGHTS)
def test_a_note_exactly_for_the_times_a_change_skips_or_repeats(name: str, day: str) -> None:
    zone = ZoneInfo(name)
    midnight = datetime.fromisoformat(day)
    for minute in range(-60, 5 * 60, 5):
        local = midnight + timedelta(minutes=minute)
        text = local.strftime("%Y-%m-%d %H:%M")
        read, note = read_timestamp(text, zone)
        showing = moments_showing(local, zone)
        if len(showing) == 1:
            assert note is None and read == showing[0], text
        elif not showing:  # skipped: read as far past the gap's start as it was written
            assert note is not None and "does not exist" in note, text
            before = read_timestamp((local - timedelta(hours=2)).isoformat(), zone)[0]
            assert read - before == timedelta(hours=2), text
        else:  # repeated: the first of the two, and how to write the second
            assert note is not None and "happened twice" in note, text
            assert read == showing[0], text
            later = showing[1].astimezone(zone).isoformat(timespec="minutes")
            assert f"write {later} if it was the second" in note, text
            assert read_timestamp(later, zone) == (showing[1], None)


def test_a_date_in_the_gap_says_it_is_its_midnight() -> None:
    read, note = read_timestamp("2026-09-06", ZoneInfo("America/Santiago"))
    assert note is not None and note.startswith("'2026-09-06' (midnight) does not exist")
    assert read == datetime(2026, 9, 6, 4, 0, tzinfo=UTC)
