"""The loop watch sees a held loop as long as it was held, and says so past its bar."""

from __future__ import annotations

import asyncio
import time

import pytest
from structlog.testing import capture_logs

from reengage import loopwatch
from reengage.metrics import LOOP_LAG_MAX


@pytest.mark.alone  # it times the loop: measured with the cores to itself
def test_a_loop_held_by_blocking_work_shows_as_lag_of_about_its_length() -> None:
    async def scenario() -> loopwatch.LoopLag:
        async with loopwatch.watching(interval=0.01, warn_after=0.1) as lag:
            await asyncio.sleep(0.05)  # a few wake-ups on time
            time.sleep(0.15)  # noqa: ASYNC251 - holds the loop, as a blocking database call would
            await asyncio.sleep(0.05)
        return lag

    with capture_logs() as logs:
        lag = asyncio.run(scenario())
    assert lag.wakeups >= 5
    assert 0.13 <= lag.worst < 1.0
    assert LOOP_LAG_MAX._value.get() == pytest.approx(lag.worst)
    stalls = [e for e in logs if e["event"] == "event_loop_stalled"]
    assert len(stalls) == 1 and stalls[0]["stalled_ms"] >= 130


@pytest.mark.alone  # it times the loop too: a busy neighbour's 175 ms would read as a stall
def test_a_loop_that_only_awaits_has_no_stall() -> None:
    async def scenario() -> loopwatch.LoopLag:
        async with loopwatch.watching(interval=0.01, warn_after=0.1) as lag:
            for _ in range(10):
                await asyncio.sleep(0.01)
        return lag

    with capture_logs() as logs:
        lag = asyncio.run(scenario())
    assert lag.wakeups >= 5
    assert not [e for e in logs if e["event"] == "event_loop_stalled"]
