"""Errors a person can meet belong to the ReengageError tree, so the CLI prints one line."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from reengage.campaigns import SendWindow
from reengage.errors import ReengageError, WindowNeverOpens
from reengage.sendtimes import next_send_time


def test_a_window_that_never_opens_is_a_reengage_error() -> None:
    # Validation refuses such a campaign; a window built by hand still fails in the tree.
    shut = SendWindow.model_construct(hours="09:00-17:00", days=[], timezone="UTC", skip_dates=[])
    with pytest.raises(WindowNeverOpens, match="never opens within a year") as refused:
        next_send_time(shut, ZoneInfo("UTC"), datetime(2026, 11, 24, tzinfo=UTC))
    assert isinstance(refused.value, ReengageError)
