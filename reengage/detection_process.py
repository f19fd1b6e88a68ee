"""The daemon's detection passes in a process of their own, so they never hold its loop.

A detection pass over a large base is Python work on many objects: in a thread of the
daemon it shares the interpreter with the event loop, and each of its garbage collections
(tens of milliseconds with a chunk of 5,000 customers alive) and each stretch it keeps the
GIL hold the loop, and with it the mail on the wire, the web app and the inbound listener.
`reengage run` therefore hands each pass to one long-lived child process (started once,
with ``spawn``: a fork of a threaded daemon is not safe). The child opens the same
database, decides exactly as :func:`reengage.enroll.detect_and_enroll` always does (the
chunks, leases and writes are the same), and hands back its :class:`EnrollReport`. The
daemon's lock on the pass is still held and renewed by the daemon.

The child runs at a lower CPU priority (:data:`NICENESS`): where the machine has fewer
free cores than the daemon has work, mail on the wire, web requests and inbound mail go
first, and a pass takes longer rather than halving the send rate (``bench/send.py
--honest``). On PostgreSQL the queries' own work runs in the server, at its priority.

A child that dies (killed, out of memory) fails that pass with a clear log line; the chunk
it held is taken again after its lease, and the next pass starts a new child. A child whose
daemon died exits within a second (it watches its parent), so no orphan goes on writing.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.sharedctypes import Synchronized

from reengage import timeutil
from reengage.campaigns import Campaign
from reengage.config import LogFormat
from reengage.enroll import EnrollReport, detect_and_enroll
from reengage.errors import StoreError
from reengage.logs import configure_logging, get_logger
from reengage.refit import refit_model
from reengage.store import Store
from reengage.store.lapse_models import Refit

log = get_logger(__name__)

PARENT_CHECK_S = 1.0  # how soon a child notices its daemon is gone
STOPPING = "the daemon is stopping"
MANAGER_EXIT_S = 5.0  # how long a stop waits for the pool's bookkeeping to end
# How much lower the child's CPU priority is than the daemon's (nice(2): 19 is the lowest).
NICENESS = 10


@dataclass(frozen=True)
class ChildSetup:
    """What the child needs to work as its daemon does: the store, the logs, the clock."""

    database_url: str
    attribution_days: int
    log_level: str
    log_format: LogFormat
    # The daemon's pinned clock (REENGAGE_NOW), carried over as is: the monotonic clock is
    # the machine's, so the child's time is the daemon's to the microsecond.
    clock_origin: tuple[datetime, float] | None
    connect_timeout: int | None = None  # REENGAGE_DATABASE_CONNECT_TIMEOUT


class DetectionProcess:
    """One child process that runs the daemon's detection passes, one at a time."""

    def __init__(self, setup: ChildSetup) -> None:
        self.setup = setup
        self._context = multiprocessing.get_context("spawn")
        self._pool: ProcessPoolExecutor | None = None
        self._begun: Synchronized[int] | None = None  # the last pass a child began
        self._passes = 0
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        """Start the child and wait until it has loaded what a pass needs. Call it from the
        daemon's main thread, before the passes run."""
        with self._lock:
            pool, _ = self._ensure_pool()
        try:
            pool.submit(_ready).result()
        except BrokenProcessPool:
            raise StoreError(
                "the detection process could not start (its error is logged above)"
            ) from None

    def detect(
        self,
        campaigns: list[Campaign],
        now: datetime,
        *,
        worker: str,
        start: bool = True,
        whole: bool = False,
    ) -> EnrollReport:
        """One pass (or the chunks of one under way, ``start=False``) in the child.

        Raises :class:`StoreError` as the pass would (the database went away). A pass cut
        short (the daemon is stopping, or the child died during it) is a report that says
        why; a pass handed to a child that had died before it began runs in a new one."""
        for _ in range(2):
            with self._lock:
                if self._closed:
                    return EnrollReport(skipped=STOPPING)
                self._passes += 1
                number = self._passes
                pool, begun = self._ensure_pool()
                task = functools.partial(_detect, number, campaigns, now, worker, start, whole)
                try:
                    future: Future[EnrollReport] = pool.submit(task)
                except BrokenProcessPool:
                    future = _broken()
            try:
                return future.result()
            except BrokenProcessPool:
                with self._lock:
                    if self._pool is pool:
                        self._pool = None  # the next pass starts a new child
                    if self._closed:
                        return EnrollReport(skipped=STOPPING)
                if begun.value == number:
                    break  # it died during the pass
                log.warning("detection_process_restarted", hint="it died between passes")
        log.error("detection_process_died", hint="its chunk is taken again after its lease")
        return EnrollReport(
            skipped="the detection process died during the pass (killed, or out of memory); "
            "the next pass starts a new one"
        )

    def refit(self, now: datetime) -> Refit | None:
        """The lapse model's refit (:func:`reengage.refit.refit_model`) in the child, after
        any pass under way: it is Python work on every customer, kept off the daemon's loop.
        None when the daemon is stopping or the child died during it (logged)."""
        with self._lock:
            if self._closed:
                return None
            pool, _ = self._ensure_pool()
            try:
                future: Future[Refit] = pool.submit(_refit, now)
            except BrokenProcessPool:
                self._pool = None
                log.error("refit_process_died", hint="the next refit starts a new child")
                return None
        try:
            return future.result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            if not self._closed:
                log.error("refit_process_died", hint="the next refit starts a new child")
            return None

    @property
    def pid(self) -> int | None:
        """The child's process id while one runs."""
        processes = getattr(self._pool, "_processes", None) or {}
        return next(iter(processes), None)

    def close(self) -> None:
        """Stop the child now, whatever it is doing: a chunk it held is taken again after
        its lease, and what it had written stays written (each part is one transaction)."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is None:
            return
        manager = getattr(pool, "_executor_manager_thread", None)  # shutdown() forgets it
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()  # a pass in flight would otherwise hold the daemon's exit
        pool.shutdown(wait=False, cancel_futures=True)
        # Wait (briefly: its child is dead) for the pool's manager thread to wind down. Left
        # running into the interpreter's exit, it races Python 3.11's own exit hook for the
        # pool's wake-up pipe, and the loser prints "Exception ignored in: <module
        # 'threading'>" with a traceback into the operator's log.
        if manager is not None:
            manager.join(MANAGER_EXIT_S)

    def _ensure_pool(self) -> tuple[ProcessPoolExecutor, Synchronized[int]]:
        if self._pool is None or self._begun is None:
            self._begun = self._context.Value("q", 0)
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=self._context,
                initializer=_child_init,
                initargs=(self.setup, os.getpid(), self._begun),
            )
        return self._pool, self._begun


def _broken() -> Future[EnrollReport]:
    future: Future[EnrollReport] = Future()
    future.set_exception(BrokenProcessPool("the child had died"))
    return future


class _Child:
    store: Store | None = None
    begun: Synchronized[int] | None = None


def _child_init(setup: ChildSetup, parent: int, begun: Synchronized[int]) -> None:
    # The daemon decides when its child ends (a stop kills it, and it exits when the daemon
    # is gone): a Ctrl-C or a SIGTERM sent to the whole group is the daemon's to act on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(OSError):  # a system that refuses it: the same priority, as before
        os.nice(NICENESS)
    _Child.begun = begun
    configure_logging(setup.log_level, setup.log_format)
    timeutil._Origin.pinned = setup.clock_origin
    _Child.store = Store.open(
        setup.database_url,
        attribution_window=timedelta(days=setup.attribution_days),
        connect_timeout=setup.connect_timeout,
    )
    threading.Thread(target=_watch_parent, args=(parent,), name="watch-parent", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)  # the daemon is gone: its passes are over too


def _ready() -> bool:
    return _Child.store is not None


def _detect(
    number: int, campaigns: list[Campaign], now: datetime, worker: str, start: bool, whole: bool
) -> EnrollReport:
    store, begun = _Child.store, _Child.begun
    assert store is not None and begun is not None, "the child was started without its store"
    begun.value = number
    return detect_and_enroll(
        store, campaigns, now, start=start, whole=whole, worker=worker, clock=timeutil.utcnow
    )


def _refit(now: datetime) -> Refit:
    store = _Child.store
    assert store is not None, "the child was started without its store"
    return refit_model(store, now)
