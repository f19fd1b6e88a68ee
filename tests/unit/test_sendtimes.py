"""Send windows, holidays and the frequency cap."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from reengage.campaigns import SendWindow
from reengage.sendtimes import FrequencyCap, next_send_time

BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = SendWindow(hours="09:00-17:00", days=["tue", "wed", "thu"])


def test_inside_the_window_sends_now() -> None:
    due = datetime(2026, 11, 24, 10, 0, tzinfo=BERLIN)  # a Tuesday
    assert next_send_time(WINDOW, BERLIN, due) == due.astimezone(UTC)


def test_before_opening_waits_for_opening_in_the_recipients_zone() -> None:
    due = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)  # 06:00 in Berlin
    assert next_send_time(WINDOW, BERLIN, due) == datetime(2026, 11, 24, 9, 0, tzinfo=BERLIN)


def test_after_closing_or_on_a_closed_day_moves_to_the_next_open_day() -> None:
    friday = datetime(2026, 11, 27, 12, 0, tzinfo=BERLIN)
    assert next_send_time(WINDOW, BERLIN, friday) == datetime(2026, 12, 1, 9, 0, tzinfo=BERLIN)
    thursday_evening = datetime(2026, 11, 26, 18, 0, tzinfo=BERLIN)
    assert next_send_time(WINDOW, BERLIN, thursday_evening) == datetime(
        2026, 12, 1, 9, 0, tzinfo=BERLIN
    )


def test_holidays_are_skipped() -> None:
    window = SendWindow(
        hours="09:00-17:00", days=["tue", "wed", "thu"], skip_dates=[date(2026, 12, 1)]
    )
    friday = datetime(2026, 11, 27, 12, 0, tzinfo=BERLIN)
    assert next_send_time(window, BERLIN, friday) == datetime(2026, 12, 2, 9, 0, tzinfo=BERLIN)


def test_frequency_cap_spaces_mails_across_campaigns() -> None:
    cap = FrequencyCap(2, timedelta(days=7))
    start = datetime(2026, 11, 24, 9, tzinfo=UTC)
    cap.record("c1", start)
    cap.record("c1", start + timedelta(days=1))
    assert cap.next_allowed("c1", start + timedelta(days=2)) == start + timedelta(days=7)
    assert cap.next_allowed("c2", start) == start
    assert FrequencyCap(0, timedelta(days=7)).next_allowed("c1", start) == start
