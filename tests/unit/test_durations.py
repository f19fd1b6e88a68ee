"""Durations mean what a marketer means, the same in a campaign file and on the command line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from reengage.timeutil import parse_duration, parse_since

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("written", "length"),
    [
        ("2w", timedelta(weeks=2)),
        ("7d", timedelta(days=7)),
        ("36h", timedelta(hours=36)),
        ("90min", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)),
        (" 3 days ", timedelta(days=3)),
        ("0d", timedelta(0)),
    ],
)
def test_weeks_days_hours_and_minutes(written: str, length: timedelta) -> None:
    assert parse_duration(written) == length


def test_a_bare_m_is_refused_because_it_may_mean_a_month() -> None:
    with pytest.raises(ValueError, match="ambiguous") as refused:
        parse_duration("1m")
    assert str(refused.value) == "'1m' is ambiguous: write 1min for minutes or 30d for a month"
    with pytest.raises(ValueError, match="'3m' is ambiguous: write 3min for minutes or 90d for"):
        parse_duration("3m")


@pytest.mark.parametrize(
    ("written", "fix"),
    [
        ("2 months", "'2 months': months differ in length; write 60d"),
        ("1y", "'1y': write 365d"),
        ("30s", "'30s': the shortest unit is min (minutes), like 1min"),
        ("7dd", "'7dd' is not a duration like 7d or 36h (units: w, d, h, min)"),
        ("soon", "'soon' is not a duration like 7d or 36h (units: w, d, h, min)"),
        ("9" * 30 + "d", f"'{'9' * 30}d' is longer than a hundred years"),
    ],
)
def test_what_is_not_a_duration_says_what_to_write(written: str, fix: str) -> None:
    with pytest.raises(ValueError, match=f"^'{written}'") as refused:
        parse_duration(written)
    assert str(refused.value) == fix


def test_since_takes_the_same_durations_as_a_campaign_file() -> None:
    assert parse_since("90min", NOW, BERLIN) == NOW - timedelta(minutes=90)
    assert parse_since("30d", NOW, BERLIN) == NOW - timedelta(days=30)
    assert parse_since("2026-01-31", NOW, BERLIN) == datetime(2026, 1, 30, 23, tzinfo=UTC)
    with pytest.raises(ValueError, match="'90m' is ambiguous: write 90min for minutes"):
        parse_since("90m", NOW, BERLIN)
    with pytest.raises(ValueError, match="not a date like 2026-01-31 or a time ago like 30d"):
        parse_since("last week", NOW, BERLIN)
