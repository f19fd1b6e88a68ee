"""`reengage run`: APScheduler 3.x ticks; the jobs ask the database what is due.

Jobs: reload campaign files (every 30 s), expire dead sends (every minute), detect and
enroll (every few minutes, in a process of its own), dispatch due steps (every few seconds),
the reps' morning digests (every minute: each rep once per local day), the lapse model's
refit (looked at every few minutes, done once per ``refit_every``: see
:mod:`reengage.refit`) and, when one is configured, reading the inbound mailbox (every
minute, in a thread). SIGTERM and Ctrl-C
stop the ticking, let in-flight sends finish, close connections and exit 0. ``--once`` does
one full pass and returns."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from reengage import jobs, loopwatch
from reengage.authoring import CampaignLibrary
from reengage.campaigns import ExitReason
from reengage.compose import Workspace
from reengage.detection_process import DetectionProcess
from reengage.detection_runner import DetectionRunner
from reengage.digest import DigestConfig, DigestReport, send_digests
from reengage.errors import MailboxError, StoreError
from reengage.logs import get_logger
from reengage.mailbox_poll import MailboxPoller, PollReport, poll_alone
from reengage.mailer import Mailer
from reengage.outage import Outage
from reengage.responses import Policy
from reengage.spool import Spool
from reengage.store import Store
from reengage.store.lapse_models import Refit

log = get_logger(__name__)
SHUTDOWN_RESERVE_S = 2.0  # of the stop grace, kept for closing down after the sends
PROBE_EVERY_S = 5  # how often an outage asks the database whether it is back
JOIN_EVERY_S = 30  # how often a worker looks for a detection pass to share (chunk lease: 2 min)


@dataclass
class PassReport:
    """What one pass (``--once``) did."""

    enrolled: int = 0
    held_out: int = 0
    exited: int = 0
    results: dict[str, int] = field(default_factory=dict)
    unknown: int = 0
    digests: dict[str, int] = field(default_factory=dict)
    detection_skipped: str | None = None


class Service:
    """The daemon: the jobs, wired to one store, one mailer and the campaign files."""

    def __init__(
        self,
        store: Store,
        mailer: Mailer,
        ws: Workspace,
        *,
        clock: Callable[[], datetime],
        batch: int = 100,
        concurrency: int = 4,
        detect_every_s: int = 300,
        dispatch_every_s: int = 5,
        lease: timedelta = jobs.LEASE,
        claim: timedelta = jobs.CLAIM_LEASE,
        digest: DigestConfig | None = None,
        digest_every_s: int = 60,
        grace: timedelta = timedelta(seconds=10),
        spool_dir: Path | None = None,
        detection: DetectionProcess | None = None,
        mailbox_every_s: int = 60,
        refit_every: timedelta | None = None,
    ) -> None:
        self.store, self.mailer, self.ws, self.clock = store, mailer, ws, clock
        self.refit_every = refit_every  # None: the lapse model is never refitted on its own
        # The inbound mailbox's poller, set before the service runs (it records through an
        # InboundHandler built on this service's clock and response policy); None: no mailbox.
        self.mailbox: MailboxPoller | None = None
        self.mailbox_every_s = mailbox_every_s
        self.mailbox_outage = Outage("mailbox_unavailable", "mailbox_back")
        self.digest, self.digest_every_s = digest, digest_every_s
        self.library = CampaignLibrary(ws)
        self.batch, self.concurrency, self.lease = batch, concurrency, lease
        self.claim = claim
        self.detect_every_s, self.dispatch_every_s = detect_every_s, dispatch_every_s
        self.grace = grace
        self.database = Outage(
            "database_unavailable", "database_back", "database_still_unavailable"
        )
        self._stopping = asyncio.Event()
        self.on_stop: list[Callable[[], None]] = []
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.spool = Spool(spool_dir, self.worker_id) if spool_dir is not None else None
        self._dispatch_task: asyncio.Task[object] | None = None
        self.detecting = DetectionRunner(
            store,
            self.worker_id,
            clock,
            detect_every_s=detect_every_s,
            process=detection,
            refit_every=refit_every,
            stopping=self._stopping.is_set,
        )
        if detection is not None:
            self.on_stop.append(detection.close)
        self._digest_task: asyncio.Task[object] | None = None

    def response_policy(self, soft_bounce_limit: int = 3) -> Policy:
        """How responses act, with each campaign's current ``exit_on``."""

        def exit_on(campaign_id: str) -> list[ExitReason] | None:
            campaign = self.library.campaigns.get(campaign_id)
            return campaign.exit_on if campaign else None

        return Policy(soft_bounce_limit=soft_bounce_limit, exit_on=exit_on)

    def reload(self) -> None:
        """Pick up campaign file changes; say what changed and what is broken."""
        report = self.library.reload()
        for problem in report.new_problems:  # each once, not again on every reload
            kept = report.kept.get(problem.file) if problem.is_error else None
            if kept is None:
                log.warning("campaign_problem", problem=str(problem))
            else:
                log.warning("campaign_problem", problem=str(problem), last_good_version_runs=kept)
        if report.added or report.changed or report.removed:
            log.info(
                "campaigns_reloaded",
                added=report.added,
                changed=report.changed,
                removed=report.removed,
                vanished_steps=report.vanished_steps,
            )

    def detect(self) -> jobs.EnrollReport:
        """Detection and enrollment with the campaigns as they are now, shared with the
        other workers (:meth:`reengage.detection_runner.DetectionRunner.detect`)."""
        return self.detecting.detect(list(self.library.campaigns.values()))

    def join_detection(self) -> jobs.EnrollReport | None:
        """Take chunks of a detection pass under way, if there is one and nothing else in
        this worker is detecting. Run every :data:`JOIN_EVERY_S` seconds, so a pass started
        by another worker is shared soon after it starts, and a chunk whose worker died is
        taken again soon after its lease ends (not at this worker's next detection tick,
        minutes later). Two cheap reads when no pass is under way."""
        return self.detecting.join(list(self.library.campaigns.values()))

    def refit(self) -> Refit | None:
        """Refit the lapse model if a refit is due, under a lease
        (:meth:`reengage.detection_runner.DetectionRunner.refit`). None: not due, or another
        worker is at it."""
        return self.detecting.refit()

    async def dispatch(self) -> jobs.DispatchReport:
        """Dispatch until nothing more is due now (or the service is stopping)."""
        self._dispatch_task = asyncio.current_task()
        if self.spool is not None:  # what was delivered during an outage is recorded first
            await asyncio.to_thread(jobs.write_spooled, self.store, self.spool)
        total = jobs.DispatchReport()
        while not self._stopping.is_set():
            report = await jobs.dispatch_due(
                self.store,
                self.mailer,
                self.ws,
                self.library.campaigns,
                self.clock(),
                batch=self.batch,
                concurrency=self.concurrency,
                lease=self.lease,
                claim=self.claim,
                more=lambda: None if self._stopping.is_set() else self.clock(),
                stopping=self._stopping.is_set,
                incomplete=self.library.incomplete,
                held=self.library.held,
                spool=self.spool,
            )
            total.results.update(report.results)
            progressed = (
                report.handled
                - sum(report.results[k] for k in jobs.PUT_OFF)
                - sum(v for k, v in report.results.items() if k.startswith("refused"))
            )
            if report.handled < self.batch or progressed <= 0:
                break
        if total.results.get("unknown") or total.results.get("failed"):
            # The gauges a scrape of /metrics reads move now, not at the next clean-up.
            await asyncio.to_thread(self._guarded(lambda: jobs.count_held(self.store)))
        return total

    async def digests(self) -> DigestReport:
        """Send the reps' digests whose morning has come (each rep once per local day)."""
        if self.digest is None:
            return DigestReport()
        self._digest_task = asyncio.current_task()
        now = self.clock()
        hold = timedelta(seconds=max(self.digest_every_s - 5, 5))
        if not await asyncio.to_thread(
            self.store.locks.try_lock, "send_digests", self.worker_id, now, hold
        ):
            return DigestReport()  # the digest row's unique key is the real guarantee
        with self.store.locks.keeping("send_digests", self.worker_id, self.clock, hold):
            return await send_digests(self.store, self.mailer, self.ws, self.digest, now)

    def poll_mailbox(self) -> PollReport | None:
        """Read the inbound mailbox once (in a thread, never on the loop), unless another
        worker is reading it. A mailbox that cannot be reached is one logged event per
        outage, not an error every minute."""
        if self.mailbox is None:
            return None
        try:
            report = poll_alone(self.mailbox, self.store, self.worker_id, self.mailbox_every_s)
        except MailboxError as exc:
            self.mailbox_outage.down(exc)
            return None
        self.mailbox_outage.up()
        return report

    async def run_once(self) -> PassReport:
        """One full pass: reload, expire, detect, dispatch what is due, send digests.

        The database work runs in threads, as the ticking service's jobs do: the event loop
        (the web app, inbound mail) is answered meanwhile."""
        await asyncio.to_thread(self.reload)
        if self.spool is not None:  # before the clean-up: these were delivered, not lost
            await asyncio.to_thread(jobs.write_spooled, self.store, self.spool)
        unknown = await asyncio.to_thread(jobs.expire_leases, self.store, self.clock())
        enrolled = await asyncio.to_thread(self.detect)
        dispatched = await self.dispatch()
        digests = await self.digests()
        await asyncio.to_thread(self._guarded(self.poll_mailbox))
        return PassReport(
            sum(enrolled.entered.values()),
            sum(enrolled.held_out.values()),
            enrolled.exited,
            dict(dispatched.results),
            unknown + digests.unknown,
            dict(digests.results),
            enrolled.skipped,
        )

    def handle_signals(self) -> None:
        """SIGTERM and Ctrl-C stop the service politely (see :meth:`run_forever`); call it
        as early as possible, so a stop during start-up is polite too."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)

    async def run_forever(self) -> None:
        """Tick until SIGTERM or Ctrl-C. Then nothing new goes out, what was claimed but not
        begun is put back for the next worker, the sends on the wire get ``grace`` to finish
        (a reply that has not come by then leaves its mail unknown), and it returns. How
        late the loop answers all along is on /metrics (see :mod:`reengage.loopwatch`)."""
        self.handle_signals()
        async with loopwatch.watching():
            await self._tick_until_stopped()
        log.info("service_stopped")

    async def _tick_until_stopped(self) -> None:
        loop = asyncio.get_running_loop()
        scheduler = AsyncIOScheduler(event_loop=loop)

        def every(seconds: float, name: str, job: Any) -> None:
            # One run at a time; runs missed while one was going are one run, not a burst.
            scheduler.add_job(
                job, "interval", seconds=seconds, id=name, max_instances=1, coalesce=True
            )

        expire = self._guarded(lambda: jobs.expire_leases(self.store, self.clock()))
        # The jobs that are plain functions (reload, expire, detect) run in the loop's
        # default thread pool (APScheduler's asyncio executor), never on the loop itself.
        every(30, "reload", self.reload)
        every(60, "expire", expire)
        every(self.detect_every_s, "detect", self._guarded(self.detect))
        every(JOIN_EVERY_S, "join_detection", self._guarded(self.join_detection))
        every(self.dispatch_every_s, "dispatch", self._guarded_async(self.dispatch))
        # While the database is away, ask it every few seconds whether it is back, so the
        # log says `database_back` when it answers, not when the next pass happens to end.
        every(PROBE_EVERY_S, "probe", self._guarded(self._probe_outage))
        if self.refit_every is not None:  # a task, as the mailbox's: a stop ends it quietly
            refit = self._guarded(self.refit)
            every(
                jobs.REFIT_CHECK_S, "refit", self._guarded_async(lambda: asyncio.to_thread(refit))
            )
        if self.digest is not None:
            every(self.digest_every_s, "digests", self._guarded_async(self.digests))
        if self.mailbox is not None:  # a task: a stop ends it quietly, not as a job error
            poll = self._guarded(self.poll_mailbox)
            job = self._guarded_async(lambda: asyncio.to_thread(poll))
            every(self.mailbox_every_s, "mailbox", job)
        await asyncio.to_thread(self.reload)  # templates compile off the loop too
        # Mails left unknown by a worker that died are settled, and the gauges a scrape of
        # /metrics reads are right from the start, not after the first minute.
        await asyncio.to_thread(expire)
        # The first detection pass can take a while on a large base: off the loop (in the
        # detection process of `reengage run`), so the loop and a SIGTERM are answered.
        await asyncio.to_thread(self._guarded(self.detect))
        if not self._stopping.is_set():
            scheduler.start()
            log.info("service_started", campaigns=sorted(self.library.campaigns))
            await self._stopping.wait()
            scheduler.pause()  # no new runs; shutting down would cancel the one in flight
        # The sends on the wire may take the grace less what closing down needs (the web
        # and inbound listeners, QUIT to the mail server): the process is gone within it.
        grace = self.grace.total_seconds()
        deadline = loop.time() + grace - min(SHUTDOWN_RESERVE_S, grace / 4)
        if self.mailbox is not None:  # it stops between two mails (see MailboxPoller.poll)
            await asyncio.to_thread(self.mailbox.wait_idle, max(deadline - loop.time(), 0))
        for task in (self._dispatch_task, self._digest_task):
            if task is None or task.done():
                continue
            try:  # the sends on the wire finish; nothing new starts
                await asyncio.wait_for(asyncio.shield(task), max(deadline - loop.time(), 0))
            except TimeoutError:
                log.warning("shutdown_grace_over", grace_seconds=self.grace.total_seconds())
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            except Exception:  # its own failure was logged where it happened; we are leaving
                log.exception("pass_failed_while_stopping")
        if scheduler.running:
            scheduler.shutdown(wait=False)
        await asyncio.to_thread(self.detecting.release_chunks)

    def _guarded(self, job: Callable[[], object]) -> Callable[[], None]:
        """``job`` for the scheduler: a database that went away is one event per outage, not
        a traceback every tick."""

        def run() -> None:
            try:
                job()
            except StoreError as exc:
                self.database.down(exc)
            else:
                self.database.up()

        return run

    def _guarded_async(
        self, job: Callable[[], Coroutine[Any, Any, object]]
    ) -> Callable[[], Coroutine[Any, Any, None]]:
        """:meth:`_guarded` for a coroutine job."""

        async def run() -> None:
            try:
                await job()
            except StoreError as exc:
                self.database.down(exc)
            except asyncio.CancelledError:
                if not self._stopping.is_set():
                    raise
                # Stopping, and the grace ran out: its sends were let go (see run_forever);
                # the job ends quietly rather than as a scheduler error with a traceback.
            else:
                self.database.up()

        return run

    def _probe_outage(self) -> None:
        """During an outage, one trivial query (raises while the database is still away)."""
        if self.database.ongoing:
            self.store.check()

    def stop(self) -> None:
        """Stop claiming new work; what is in flight finishes."""
        log.info("service_stopping")
        self._stopping.set()
        for callback in self.on_stop:
            callback()

    @property
    def stopping(self) -> bool:
        """True once a stop was asked for."""
        return self._stopping.is_set()
