"""Reps' working days: the settings' forms, the next working day, and which local day's
digest may go out at a moment — weekends, holidays, Shanghai's early morning and Berlin's
DST nights, at pinned moments (never the clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reengage.config import load_settings
from reengage.errors import ConfigError
from reengage.workdays import (
    WorkingDays,
    digest_day,
    format_weekdays,
    parse_skip_dates,
    parse_weekdays,
)
from tests.unit.test_time_policy import zoned_moments

BERLIN = ZoneInfo("Europe/Berlin")
SHANGHAI = ZoneInfo("Asia/Shanghai")
MON_FRI = WorkingDays()
CHRISTMAS = WorkingDays(skip=parse_skip_dates("2026-12-25,2026-12-26,2027-01-01"))


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("mon,tue,thu", {0, 1, 3}),
        ("mon-sat", {0, 1, 2, 3, 4, 5}),
        (" Sun - Tue , FRI ", {6, 0, 1, 4}),
        ("sat-mon", {5, 6, 0}),  # a range runs on past Sunday
        ("wed", {2}),
    ],
)
def test_the_working_days_setting_reads_ranges_and_lists(text: str, days: set[int]) -> None:
    assert parse_weekdays(text) == days
    assert parse_weekdays(format_weekdays(days)) == days  # doctor prints what it reads


@pytest.mark.parametrize(
    ("value", "named"),
    [("mon-fry", "'mon-fry'"), ("monday-friday", "'monday-friday'"), (",", "names no day")],
)
def test_a_bad_working_days_setting_stops_start_up_naming_it_and_the_form(
    value: str, named: str
) -> None:
    with pytest.raises(ConfigError) as found:
        load_settings(env_file=None, digest_days=value)
    message = str(found.value)
    assert message.startswith("REENGAGE_DIGEST_DAYS: ")
    assert named in message
    assert "mon-fri, mon,tue,thu or mon-sat" in message


def test_skip_dates_come_as_a_list_or_as_a_file_and_a_bad_one_is_named(tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.txt"
    holidays.write_text("# Berlin office\n2026-12-25  # Christmas\n\n2026-12-26\n")
    read = load_settings(env_file=None, digest_skip_dates=str(holidays)).working_days()
    assert read.skip == {date(2026, 12, 25), date(2026, 12, 26)}
    listed = load_settings(env_file=None, digest_skip_dates="2026-12-25, 2026-12-26")
    assert listed.working_days().skip == read.skip

    holidays.write_text("2026-12-25\n2026-12-32\n")
    with pytest.raises(ConfigError, match=r"REENGAGE_DIGEST_SKIP_DATES: .*holidays.txt:2: "):
        load_settings(env_file=None, digest_skip_dates=str(holidays))
    with pytest.raises(ConfigError, match="'2026-31-12' is not a date like 2026-12-25"):
        load_settings(env_file=None, digest_skip_dates="2026-12-25,2026-31-12")
    with pytest.raises(ConfigError, match=r"cannot read the file .*missing.txt"):
        load_settings(env_file=None, digest_skip_dates=str(tmp_path / "missing.txt"))


def test_the_default_is_monday_to_friday_with_no_holidays() -> None:
    days = load_settings(env_file=None).working_days()
    assert days == MON_FRI
    assert days.describe() == "mon-fri"
    assert CHRISTMAS.describe(date(2026, 12, 26)) == "mon-fri, not 2026-12-26, 2027-01-01"


@pytest.mark.parametrize(
    ("days", "asked", "lands"),
    [
        (MON_FRI, date(2026, 12, 4), date(2026, 12, 4)),  # a Friday is itself
        (MON_FRI, date(2026, 12, 5), date(2026, 12, 7)),  # Saturday: Monday
        (MON_FRI, date(2026, 12, 6), date(2026, 12, 7)),  # Sunday: Monday
        (WorkingDays(parse_weekdays("mon-sat")), date(2026, 12, 5), date(2026, 12, 5)),
        (CHRISTMAS, date(2026, 12, 24), date(2026, 12, 24)),
        # Christmas is a Friday: a holiday, then the weekend, then Monday.
        (CHRISTMAS, date(2026, 12, 25), date(2026, 12, 28)),
        (CHRISTMAS, date(2027, 1, 1), date(2027, 1, 4)),
        # A skip date just after the weekend moves a Saturday's call to Tuesday.
        (WorkingDays(skip=frozenset({date(2026, 12, 7)})), date(2026, 12, 5), date(2026, 12, 8)),
    ],
)
def test_a_day_off_moves_to_the_next_working_day(
    days: WorkingDays, asked: date, lands: date
) -> None:
    assert days.next_working_day(asked) == lands


weekday_sets = st.frozensets(st.integers(0, 6), min_size=1)
some_days = st.dates(date(2020, 1, 1), date(2035, 12, 31))


@given(
    weekdays=weekday_sets,
    skip=st.frozensets(st.dates(date(2026, 1, 1), date(2027, 12, 31)), max_size=60),
    asked=some_days,
)
def test_the_next_working_day_is_the_first_working_day_not_before_the_one_asked(
    weekdays: frozenset[int], skip: frozenset[date], asked: date
) -> None:
    days = WorkingDays(weekdays, skip)
    found = days.next_working_day(asked)
    assert found >= asked
    assert days.is_working(found)
    between = (asked + timedelta(days=n) for n in range((found - asked).days))
    assert not any(days.is_working(d) for d in between)  # none skipped over


@given(weekdays=weekday_sets)
def test_the_days_in_force_are_printed_as_the_setting_would_read_them(
    weekdays: frozenset[int],
) -> None:
    assert parse_weekdays(format_weekdays(weekdays)) == weekdays


@given(
    place=zoned_moments(),
    weekdays=weekday_sets,
    hour=st.integers(0, 23),
    window=st.integers(1, 24),
)
def test_a_digest_may_go_only_on_a_working_day_of_the_reps_own_calendar_in_its_hours(
    place: tuple[ZoneInfo, datetime], weekdays: frozenset[int], hour: int, window: int
) -> None:
    zone, now = place
    days = WorkingDays(weekdays, frozenset({now.date()}))  # UTC's date is a holiday too
    local = now.astimezone(zone)
    found = digest_day(now, zone, days, hour, window)
    expected = days.is_working(local.date()) and hour <= local.hour < hour + window
    assert found == (local.date() if expected else None)


def digest_days(
    zone: ZoneInfo,
    days: WorkingDays,
    start: datetime,
    hours: int,
    *,
    hour: int = 7,
    window: int = 8,
) -> dict[date, list[datetime]]:
    """Which local day's digest may go out at each 10-minute tick over ``hours`` hours."""
    found: dict[date, list[datetime]] = {}
    for step in range(hours * 6):
        tick = start + timedelta(minutes=10 * step)
        day = digest_day(tick, zone, days, hour, window)
        if day is not None:
            found.setdefault(day, []).append(tick)
    return found


def test_no_digest_on_a_weekend_and_the_next_goes_on_monday_morning() -> None:
    friday = datetime(2026, 12, 4, 0, 0, tzinfo=UTC)
    found = digest_days(BERLIN, MON_FRI, friday, 24 * 4)
    assert sorted(found) == [date(2026, 12, 4), date(2026, 12, 7)]
    assert found[date(2026, 12, 7)][0] == datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # 07:00 CET


def test_no_digest_on_a_skip_date_nor_the_weekend_after_it() -> None:
    thursday = datetime(2026, 12, 24, 0, 0, tzinfo=UTC)
    found = digest_days(BERLIN, CHRISTMAS, thursday, 24 * 5)
    assert sorted(found) == [date(2026, 12, 24), date(2026, 12, 28)]


def test_shanghai_reps_go_by_their_own_date_not_utcs() -> None:
    # Sunday 23:30 UTC is Monday 07:30 in Shanghai: Monday's digest, though UTC says Sunday.
    sunday_night = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)
    assert digest_day(sunday_night, SHANGHAI, MON_FRI, 7, 8) == date(2026, 12, 7)
    # Friday 23:30 UTC is Saturday 07:30 there: no digest, though UTC says Friday.
    friday_night = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)
    assert digest_day(friday_night, SHANGHAI, MON_FRI, 7, 8) is None
    assert digest_day(friday_night, ZoneInfo("UTC"), MON_FRI, 0, 24) == date(2026, 12, 4)
    # Christmas Eve 23:30 UTC is Christmas morning in Shanghai: a holiday there.
    assert digest_day(datetime(2026, 12, 24, 23, 30, tzinfo=UTC), SHANGHAI, CHRISTMAS, 7, 8) is None


def test_berlin_spring_night_monday_begins_an_hour_earlier_in_utc() -> None:
    # Sunday 29 March 2026: 02:00 CET becomes 03:00 CEST. Monday starts at 22:00 UTC.
    saturday = datetime(2026, 3, 28, 0, 0, tzinfo=UTC)
    found = digest_days(BERLIN, MON_FRI, saturday, 70, hour=0, window=24)  # to Mon 23:50
    assert sorted(found) == [date(2026, 3, 30)]
    assert found[date(2026, 3, 30)][0] == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    # With Sunday worked and the digest at 02:00, an hour that does not exist that night,
    # Sunday's digest goes out at 03:00 CEST, the first moment past it.
    every_day = WorkingDays(parse_weekdays("mon-sun"))
    found = digest_days(BERLIN, every_day, saturday, 70, hour=2, window=2)
    assert found[date(2026, 3, 29)][0] == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_berlin_autumn_night_the_hour_twice_is_one_local_day() -> None:
    # Sunday 25 October 2026: 03:00 CEST becomes 02:00 CET, so 02:xx happens twice.
    saturday = datetime(2026, 10, 24, 0, 0, tzinfo=UTC)
    assert digest_days(BERLIN, MON_FRI, saturday, 47, hour=0, window=24) == {}  # to Sun 23:50
    found = digest_days(BERLIN, MON_FRI, saturday, 71, hour=0, window=24)  # to Mon 23:50
    assert sorted(found) == [date(2026, 10, 26)]
    assert found[date(2026, 10, 26)][0] == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)  # CET
    every_day = WorkingDays(parse_weekdays("mon-sun"))
    found = digest_days(BERLIN, every_day, saturday, 47, hour=2, window=1)
    assert sorted(found) == [date(2026, 10, 24), date(2026, 10, 25)]
    assert len(found[date(2026, 10, 25)]) == 12  # two hours of ticks, all Sunday's
