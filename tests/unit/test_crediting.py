"""Which enrollment an activity is credited to: a pure function of the customer's
enrollments, the activity's moment and the attribution window (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from reengage.store.conversions import crediting

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
DAY = timedelta(days=1)
WINDOW = timedelta(days=30)


def _enrollment(name: str, enrolled: datetime, last_mail: datetime | None) -> SimpleNamespace:
    return SimpleNamespace(name=name, enrolled_at=enrolled, last_step_at=last_mail)


def test_an_order_within_the_window_of_the_last_mail_is_credited_to_it() -> None:
    mailed = _enrollment("win-back", NOW - 50 * DAY, NOW - 20 * DAY)
    assert crediting([mailed], NOW, WINDOW) is mailed
    assert crediting([mailed], NOW + 11 * DAY, WINDOW) is None  # 31 days after the mail


def test_a_holdout_member_is_credited_within_the_window_of_enrolling() -> None:
    holdout = _enrollment("win-back", NOW - 29 * DAY, None)
    assert crediting([holdout], NOW, WINDOW) is holdout
    assert crediting([holdout], NOW + 2 * DAY, WINDOW) is None


def test_nothing_before_enrolling_is_credited_and_the_latest_enrollment_wins() -> None:
    older = _enrollment("habit", NOW - 40 * DAY, NOW - 5 * DAY)
    newer = _enrollment("win-back", NOW - 3 * DAY, NOW - 2 * DAY)
    assert crediting([older, newer], NOW, WINDOW) is newer
    assert crediting([newer, older], NOW, WINDOW) is newer
    assert crediting([older, newer], NOW - 4 * DAY, WINDOW) is older
    assert crediting([newer], NOW - 3 * DAY, WINDOW) is None  # the moment of enrolling
