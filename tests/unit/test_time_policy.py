"""Time policy over arbitrary moments: every hour of the year, DST changes in both
hemispheres, half- and three-quarter-hour offsets, late evening UTC and local midnights.

Each property is checked against a brute-force reading of what the user was promised (a
minute-by-minute scan, a count over every rolling period), never against the code's own
arithmetic.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reengage.campaigns import WEEKDAYS, SendWindow
from reengage.digest.calllist import day_start, local_day
from reengage.models import Rep
from reengage.sendtimes import FrequencyCap, next_send_time

pytestmark = pytest.mark.clock

ZONES = [
    ZoneInfo(name)
    for name in (
        "Europe/Berlin",  # spring forward 02:00 → 03:00, fall back 03:00 → 02:00
        "America/New_York",  # other dates than Europe
        "Australia/Sydney",  # southern hemisphere: summer time over New Year
        "Asia/Kolkata",  # +05:30, no DST
        "Pacific/Chatham",  # +12:45 / +13:45, changes at 02:45 local
        "UTC",
    )
]
YEAR = datetime(2026, 1, 1, tzinfo=UTC)
MINUTES_IN_YEAR = 365 * 24 * 60


def _changes(zone: ZoneInfo) -> list[datetime]:
    """The moments in 2026 at which ``zone``'s offset from UTC changes (to the minute)."""
    found = []
    hour = YEAR
    while hour.year == 2026:
        after = hour + timedelta(hours=1)
        if hour.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            minute = hour
            while minute.astimezone(zone).utcoffset() == hour.astimezone(zone).utcoffset():
                minute += timedelta(minutes=1)
            found.append(minute)
        hour = after
    return found


CHANGES = {zone: _changes(zone) for zone in ZONES}
DST_CHANGES = sorted(moment for changes in CHANGES.values() for moment in changes)
assert len(DST_CHANGES) == 8  # Berlin, New York, Sydney, Chatham: two each


def _plus(base: datetime, minutes: int, seconds: int) -> datetime:
    return base + timedelta(minutes=minutes, seconds=seconds)


seconds = st.integers(0, 59)
# Any minute of the year, and on purpose the moments where time is tricky.
moments = st.one_of(
    st.builds(_plus, st.just(YEAR), st.integers(0, MINUTES_IN_YEAR - 1), seconds),
    st.builds(_plus, st.sampled_from(DST_CHANGES), st.integers(-24 * 60, 24 * 60), seconds),
    st.builds(  # late evening UTC: already tomorrow east of Greenwich
        _plus,
        st.builds(lambda d: YEAR + timedelta(days=d, hours=22), st.integers(0, 364)),
        st.integers(0, 119),
        seconds,
    ),
    st.builds(  # around a local midnight
        _plus,
        st.builds(
            lambda d, z: datetime.combine(date(2026, 1, 1) + timedelta(days=d), time(0), z),
            st.integers(0, 364),
            st.sampled_from(ZONES),
        ),
        st.integers(-90, 90),
        seconds,
    ),
)


# -- the send window --------------------------------------------------------------------------


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def windows(draw: st.DrawFn, business: bool) -> SendWindow:
    """A send window: business hours (opening 05:00 or later, quarter hours), or any hours
    at all, often opening or closing in the small hours when clocks change."""
    if business:
        opening = draw(st.integers(5 * 4, 24 * 4 - 1)) * 15
        closing = draw(st.integers(opening // 15 + 1, 24 * 4)) * 15
    else:
        opening = draw(st.integers(0, 24 * 60 - 1) | st.integers(60, 4 * 60))
        closing = draw(
            st.integers(opening + 1, 24 * 60) | st.integers(opening + 1, max(opening + 1, 5 * 60))
        )
    days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True))
    skip = draw(
        st.lists(st.integers(0, 370), max_size=3).map(
            lambda ds: [YEAR.date() + timedelta(days=d) for d in ds]
        )
    )
    return SendWindow(hours=f"{_clock(opening)}-{_clock(closing)}", days=days, skip_dates=skip)


def _inside(window: SendWindow, zone: ZoneInfo, moment: datetime) -> bool:
    """What the campaign promises, read literally: an allowed weekday that is not a holiday,
    and a local wall-clock time from opening up to (not including) closing; 24:00 is the
    end of the day."""
    local = moment.astimezone(zone)
    opening, closing = window.hours.split("-")
    wall = local.time().replace(tzinfo=None)
    return (
        WEEKDAYS[local.weekday()] in window.days
        and local.date() not in window.skip_dates
        and time.fromisoformat(opening) <= wall
        and (closing == "24:00" or wall < time.fromisoformat(closing))
    )


def _first_inside(window: SendWindow, zone: ZoneInfo, due: datetime) -> datetime:
    """The earliest moment at or after ``due`` inside the window, by a scan minute by minute.

    Every offset here is a whole number of minutes, so whether a moment is inside only
    changes on a whole UTC minute: ``due`` itself or the next minutes are all one must try.
    """
    # In UTC: minutes added to a local time are wall-clock minutes, wrong across a change.
    due = due.astimezone(UTC)
    if _inside(window, zone, due):
        return due
    moment = due.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(25 * 24 * 60):
        if _inside(window, zone, moment):
            return moment
        moment += timedelta(minutes=1)
    raise AssertionError("no open minute within 25 days")


def _check_send_time(window: SendWindow, zone: ZoneInfo, due: datetime) -> None:
    sent = next_send_time(window, zone, due)
    assert sent >= due
    assert _inside(window, zone, sent), sent.astimezone(zone)
    # Compared in UTC: an aware time in a repeated autumn hour never equals one in another
    # zone (PEP 495), even when both name the same instant.
    assert sent.astimezone(UTC) == _first_inside(window, zone, due), sent.astimezone(zone)


@st.composite
def zoned_moments(draw: st.DrawFn) -> tuple[ZoneInfo, datetime]:
    """A zone, and a moment that is often within a day of that zone's own clock change."""
    zone = draw(st.sampled_from(ZONES))
    if not CHANGES[zone]:
        return zone, draw(moments)
    near = st.builds(_plus, st.sampled_from(CHANGES[zone]), st.integers(-24 * 60, 24 * 60), seconds)
    return zone, draw(moments | near)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(window=windows(business=True), zone=st.sampled_from(ZONES), due=moments)
@example(  # due in the night Berlin springs forward: the window opens at 09:00 CEST
    SendWindow(hours="09:00-17:00", days=["sun"]), ZoneInfo("Europe/Berlin"),
    datetime(2026, 3, 29, 0, 45, tzinfo=UTC),
)  # fmt: skip
@example(  # 23:40 UTC on a Sunday is Monday morning in Chatham, Sunday evening in New York
    SendWindow(hours="09:00-17:00", days=["mon"]), ZoneInfo("Pacific/Chatham"),
    datetime(2026, 11, 29, 23, 40, tzinfo=UTC),
)  # fmt: skip
def test_a_business_window_sends_at_the_first_open_minute_in_the_recipients_zone(
    window: SendWindow, zone: ZoneInfo, due: datetime
) -> None:
    _check_send_time(window, zone, due)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(window=windows(business=False), zoned=zoned_moments())
def test_any_window_sends_at_the_first_open_minute_in_the_recipients_zone(
    window: SendWindow, zoned: tuple[ZoneInfo, datetime]
) -> None:
    zone, due = zoned
    _check_send_time(window, zone, due)


def test_a_window_opening_in_the_skipped_spring_hour_opens_when_the_clock_jumps() -> None:
    # Berlin, 29 March 2026: 02:00 becomes 03:00. "From 02:30" is first true at 03:00 CEST.
    window = SendWindow(hours="02:30-05:00", days=list(WEEKDAYS))
    _check_send_time(window, ZoneInfo("Europe/Berlin"), datetime(2026, 3, 29, 0, 45, tzinfo=UTC))


def test_a_window_wholly_inside_the_skipped_spring_hour_sends_nothing_that_day() -> None:
    # 02:00-02:01 never happens on 29 March in Berlin: the next send is Monday's 02:00, not
    # 03:00 on Sunday, outside the window.
    window = SendWindow(hours="02:00-02:01", days=list(WEEKDAYS))
    _check_send_time(window, ZoneInfo("Europe/Berlin"), datetime(2026, 3, 29, 0, 45, tzinfo=UTC))


def test_a_window_in_the_repeated_autumn_hour_opens_again_the_second_time_round() -> None:
    # Berlin, 25 October 2026: 03:00 CEST becomes 02:00 CET, so 02:00-02:30 comes twice; at
    # 02:40 CEST the second 02:00 is twenty minutes away, not a day.
    window = SendWindow(hours="02:00-02:30", days=list(WEEKDAYS))
    _check_send_time(window, ZoneInfo("Europe/Berlin"), datetime(2026, 10, 25, 0, 40, tzinfo=UTC))


def test_a_window_until_24_00_is_open_in_the_last_second_of_the_day() -> None:
    window = SendWindow(hours="09:00-24:00", days=list(WEEKDAYS))
    late = datetime(2026, 11, 29, 23, 59, 59, 500_000, tzinfo=UTC)
    _check_send_time(window, ZoneInfo("UTC"), late)


# -- the frequency cap ------------------------------------------------------------------------


@st.composite
def attempts(draw: st.DrawFn) -> list[datetime]:
    """When one customer's mails fall due, in time order, seconds to weeks apart."""
    start = draw(moments)
    gaps = draw(st.lists(st.integers(0, 10 * 86400), min_size=1, max_size=25))
    out, at = [], start
    for gap in gaps:
        at += timedelta(seconds=gap)
        out.append(at)
    return out


def _in_period(sent: list[datetime], end: datetime, period: timedelta) -> int:
    """Mails in the rolling period that ends at ``end``: (end - period, end]."""
    return sum(1 for t in sent if end - period < t <= end)


@settings(max_examples=300, deadline=None)
@given(
    due=attempts(),
    limit=st.integers(1, 4),
    period=st.sampled_from([timedelta(days=7), timedelta(days=1), timedelta(hours=36)]),
    delays=st.lists(st.integers(0, 3 * 86400), min_size=25, max_size=25),
)
def test_the_frequency_cap_never_lets_more_than_the_limit_into_any_rolling_period(
    due: list[datetime], limit: int, period: timedelta, delays: list[int]
) -> None:
    # Sent in time order, as the daemon sends; a send may also be held back further by its
    # window (the delays).
    cap = FrequencyCap(limit, period)
    sent: list[datetime] = []
    for at, delay in zip(due, delays, strict=False):
        at = max([at, *sent])
        allowed = cap.next_allowed("c", at)
        assert allowed >= at
        if allowed > at:  # held back only as long as needed
            assert _in_period(sent, allowed - timedelta(microseconds=1), period) >= limit
        else:
            assert _in_period(sent, at, period) < limit
        when = allowed + timedelta(seconds=delay)
        cap.record("c", when)
        sent.append(when)
    for end in sent:
        assert _in_period(sent, end, period) <= limit, (end, sent)


# -- "call again on D" ------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(now=moments, zone=st.sampled_from(ZONES), ahead=st.integers(1, 366))
def test_a_call_set_for_day_d_lands_on_day_d_in_the_reps_zone(
    now: datetime, zone: ZoneInfo, ahead: int
) -> None:
    # The outcome form offers the rep's own dates; the call is due from that day's first
    # moment in the rep's zone (record_outcome), so the rep's list for D has it and the
    # list for the day before does not.
    rep = Rep(external_id="r", name="R", email="r@example.com", timezone=str(zone))
    today = local_day(rep, now)
    chosen = today + timedelta(days=ahead)
    due = day_start(chosen, zone)
    assert local_day(rep, due) == chosen
    assert local_day(rep, due - timedelta(microseconds=1)) == chosen - timedelta(days=1)
    assert due > now
