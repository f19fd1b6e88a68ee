"""An outage of something the daemon depends on (the database, the inbound mailbox): one
event when it starts and one when it ends, never an error with a traceback every tick."""

from __future__ import annotations

import time

from reengage.logs import get_logger

log = get_logger(__name__)


class Outage:
    """Whether a dependency is away, and since when; logs the change, not each failure."""

    def __init__(self, down_event: str, back_event: str, still_event: str | None = None) -> None:
        self.down_event, self.back_event, self.still_event = down_event, back_event, still_event
        self.since: float | None = None  # monotonic seconds, while it is away

    @property
    def ongoing(self) -> bool:
        """True while the dependency is away."""
        return self.since is not None

    def down(self, exc: Exception) -> None:
        """A call failed: the first failure of an outage is an error in the log."""
        if self.since is None:
            self.since = time.monotonic()
            log.error(self.down_event, error=str(exc)[:500])
        elif self.still_event is not None:
            log.debug(self.still_event, error=str(exc)[:200])

    def up(self) -> None:
        """A call succeeded: an outage under way is over, and the log says after how long."""
        if self.since is not None:
            log.info(self.back_event, after_seconds=round(time.monotonic() - self.since))
            self.since = None
