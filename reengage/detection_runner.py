"""Where one worker's detection passes and lapse-model refits run: shared with the other
workers under leases, and carried out in the detection process (``reengage run``) or, without
one, in the calling thread.

A detection tick starts a pass when it wins the ``detect_and_enroll`` lease, else joins the
pass under way and takes its chunks; a refit is done by the one worker holding
``refit_lapse_model``. :class:`reengage.scheduler.Service` owns one runner and calls it from
its jobs; the campaigns are handed in at each call, as the service has them then.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from reengage import jobs
from reengage.campaigns import Campaign
from reengage.detection_process import DetectionProcess
from reengage.errors import StoreError
from reengage.logs import get_logger
from reengage.store import Store
from reengage.store.lapse_models import Refit

log = get_logger(__name__)
# The refit's lease: renewed every third of it (40 s) while the refit works, and let go of
# when it ends, so a lease past its end means its worker stopped (doctor says so).
REFIT_HOLD = timedelta(minutes=2)


class DetectionRunner:
    """One worker's share of the detection passes and refits (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        worker_id: str,
        clock: Callable[[], datetime],
        *,
        detect_every_s: int,
        process: DetectionProcess | None,
        refit_every: timedelta | None,
        stopping: Callable[[], bool],
    ) -> None:
        self.store, self.worker_id, self.clock = store, worker_id, clock
        self.detect_every_s = detect_every_s
        self.process = process  # passes run there (`reengage run`), else in a thread
        self.refit_every = refit_every  # None: the lapse model is never refitted on its own
        self.stopping = stopping
        self._detecting = threading.Lock()

    def detect(self, campaigns: list[Campaign]) -> jobs.EnrollReport:
        """Detection and enrollment, shared by every worker: one per tick starts a pass (a
        leased lock row, renewed while it works); the others, at their own ticks, join the
        pass under way and take its chunks, so a whole pass over a large base is split
        across them. A worker that dies leaves its chunk to the next after its lease."""
        with self._detecting:  # one detection thread per worker: this, or join
            return self._detect(campaigns)

    def join(self, campaigns: list[Campaign]) -> jobs.EnrollReport | None:
        """Take chunks of a detection pass under way, if there is one and nothing else in
        this worker is detecting: a pass started by another worker is shared soon after it
        starts, and a chunk whose worker died is taken again soon after its lease ends.
        Two cheap reads when no pass is under way; None while this worker is detecting."""
        if not self._detecting.acquire(blocking=False):
            return None
        try:
            report = self._pass(campaigns, self.clock(), start=False)
        finally:
            self._detecting.release()
        if report.looked_at:
            log.info("detection_pass_joined", looked_at=report.looked_at)
        return report

    def _detect(self, campaigns: list[Campaign]) -> jobs.EnrollReport:
        now = self.clock()
        hold = timedelta(seconds=max(self.detect_every_s - 5, 5))
        if not self.store.locks.try_lock("detect_and_enroll", self.worker_id, now, hold):
            report = self._pass(campaigns, now, start=False)
            if report.skipped is not None:
                log.debug("detection_skipped", reason=report.skipped)
                report.skipped = (
                    f"a detection pass started less than {hold.total_seconds() / 60:.0f} "
                    "minutes ago (here or on another worker) and has no chunk left to take; "
                    "the next one enrolls who is due"
                )
            return report
        with self.store.locks.keeping("detect_and_enroll", self.worker_id, self.clock, hold):
            return self._pass(campaigns, now, start=True)

    def _pass(self, campaigns: list[Campaign], now: datetime, *, start: bool) -> jobs.EnrollReport:
        if self.process is not None:
            return self.process.detect(campaigns, now, worker=self.worker_id, start=start)
        return jobs.detect_and_enroll(
            self.store, campaigns, now, start=start, worker=self.worker_id, clock=self.clock
        )

    def refit(self) -> Refit | None:
        """Refit the lapse model if a refit is due (one worker of many does it, under a
        lease); the verdict is recorded and logged (``model_refit``). None: not due, or
        another worker is at it. The lease is let go of however the refit ends: finished,
        lost with its child, or abandoned by a stop (then forgotten: the next start refits)."""
        if self.refit_every is None:
            return None
        now = self.clock()
        if not jobs.refit_due(self.store, now, self.refit_every):
            return None
        if not self.store.locks.try_lock(jobs.REFIT_LOCK, self.worker_id, now, REFIT_HOLD):
            return None
        try:
            with self.store.locks.keeping(jobs.REFIT_LOCK, self.worker_id, self.clock, REFIT_HOLD):
                return self._refit(now, self.refit_every)
        finally:  # finished, lost or abandoned by a stop: the next taker need not wait
            self._release_refit()

    def _refit(self, now: datetime, every: timedelta) -> Refit | None:
        if not jobs.refit_due(self.store, now, every):
            return None  # another worker refitted while this one waited for the lease
        # Under the lease, a refit still recorded as begun is one whose worker was killed:
        # closed as such now, before the child begins (or dies, or is stopped) on its own.
        jobs.close_lost(self.store, now)
        if self.process is None:
            return jobs.refit_model(self.store, now)
        refit = self.process.refit(now)
        if refit is None and self.stopping():  # no failure: the next start refits
            self.store.lapse_models.forget_unfinished(now)  # this refit's, none other
        elif refit is None:
            why = "the detection process died during the refit (killed, or out of memory)"
            refit = jobs.refit_lost(self.store, now, why)
        return refit

    def _release_refit(self) -> None:
        try:
            self.store.locks.release(jobs.REFIT_LOCK, self.worker_id, self.clock())
        except StoreError:  # the lease runs out on its own, REFIT_HOLD later at most
            log.warning("refit_lock_not_released", hint="it runs out within two minutes")

    def release_chunks(self) -> None:
        """On a clean stop, hand back the chunks of a pass this worker was deciding (its
        detection process is stopped by now): another worker takes them at once, not after
        their lease, since a clean stop is not a crash."""
        try:
            released = self.store.detection.release_chunks(self.worker_id, self.clock())
        except StoreError:  # the lease runs out as after a crash
            return
        if released:
            log.info("detection_chunks_released", chunks=released)
