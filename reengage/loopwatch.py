"""How late the daemon's event loop answers: the one number that says whether the web app,
the inbound SMTP listener and the sends on the wire are being served while a pass runs.

A watcher task asks to be woken every ``interval`` seconds and measures how late each
wake-up comes. Anything that holds the loop (a database call made on it, a long render, a
garbage collection over a large heap) shows up as a late wake-up of about its length. The
lateness goes to ``/metrics`` as a histogram (``reengage_event_loop_lag_seconds``) and as
the worst a watcher has seen since it started (``reengage_event_loop_lag_max_seconds``); a stall of
``warn_after`` seconds or more is logged (``event_loop_stalled``), once per stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

from reengage.logs import get_logger
from reengage.metrics import LOOP_LAG, LOOP_LAG_MAX

log = get_logger(__name__)

INTERVAL_S = 0.02  # 50 wake-ups a second: a few hundredths of a per cent of a core
WARN_AFTER_S = 0.25  # a pause a person at a web page or a mail server would notice


@dataclass
class LoopLag:
    """What one watcher saw: wake-ups, and the worst lateness in seconds."""

    wakeups: int = 0
    worst: float = 0.0

    def saw(self, late: float) -> None:
        """Count one wake-up that came ``late`` seconds after it was due."""
        self.wakeups += 1
        self.worst = max(self.worst, late)


async def watch(
    lag: LoopLag, *, interval: float = INTERVAL_S, warn_after: float = WARN_AFTER_S
) -> None:
    """Measure the running loop's lateness into ``lag`` and the metrics until cancelled."""
    loop = asyncio.get_running_loop()
    due = loop.time() + interval
    while True:
        await asyncio.sleep(max(due - loop.time(), 0))
        now = loop.time()
        late = max(now - due, 0.0)
        lag.saw(late)
        LOOP_LAG.observe(late)
        LOOP_LAG_MAX.set(lag.worst)
        if late >= warn_after:
            log.warning("event_loop_stalled", stalled_ms=round(late * 1000))
        due = now + interval


@contextlib.asynccontextmanager
async def watching(**options: float) -> AsyncIterator[LoopLag]:
    """Watch the loop for as long as the block runs; yields what the watcher saw."""
    lag = LoopLag()
    task = asyncio.create_task(watch(lag, **options), name="loop-watch")
    try:
        yield lag
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


SWITCH_INTERVAL_S = 0.001  # how long a busy thread may keep the GIL from the loop


def settle_process() -> None:
    """Make a started process's loop answer promptly beside its busy threads.

    Everything built so far is set aside from the collector (``gc.freeze``): its full
    collections would otherwise scan those modules and objects again and again, each
    holding the loop. And a thread busy in Python (detection, a database call's rows) keeps
    the GIL for up to the switch interval each time the loop wants it back, which the loop
    does after every socket call. At 1 ms instead of Python's 5 ms the loop gets its turn
    sooner: in bench/daemon.py (100,000 customers, PostgreSQL, one worker, two runs each)
    the mail sent during a whole pass rose by about 40% (750 to 1,050-1,090) and the pass
    took 12-15% longer (13.7-16.8 s to 15.8-18.8 s); its longest loop pause did not change
    beyond the noise (44-51 ms against 32-65 ms), the collector's pauses in the detection
    thread being most of it. The daemon's first duty is the mail and the people waiting
    on it, so the loop gets the turn.
    """
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL_S)


async def settle_startup() -> None:
    """Once the daemon has started (web servers serving, listeners open): load what the web
    stack would otherwise load on its first request, on the loop (anyio's thread runner,
    through which Starlette calls /metrics), then :func:`settle_process`. Frozen before the
    web stack was built, every full collection rescanned it (10-20 ms each, twice that on a
    busy machine)."""
    import anyio.to_thread

    await anyio.to_thread.run_sync(lambda: None)
    settle_process()
