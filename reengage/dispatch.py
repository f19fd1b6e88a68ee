"""The sending pass: claim what is due, write the message rows, render, send, record.

``dispatch_due`` follows the sending protocol in docs/architecture.md — never sent twice,
never lost; the re-checks before a mail may go are in ``reengage.recheck``, the sending and
recording of each mail in ``reengage.deliver``, the grouped writes of the mails under way in
``reengage.sentlog``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from reengage import metrics
from reengage.campaigns import Campaign
from reengage.compose import Workspace
from reengage.deliver import deliver
from reengage.detect import Population
from reengage.errors import StoreError
from reengage.lapse_model import LapseModel
from reengage.logs import get_logger
from reengage.mailer import Mailer
from reengage.recheck import PUT_OFF, BatchFacts, Planned, decide_batch
from reengage.retries import CLAIM_LEASE, LEASE
from reengage.scoring import assess_customers, prior_for
from reengage.sentlog import SentLog, to_the_end
from reengage.spool import Spool
from reengage.store import Store
from reengage.store.sending import Claimed, Started

log = get_logger(__name__)


@dataclass
class DispatchReport:
    """What one dispatch pass did."""

    results: Counter[str] = field(default_factory=Counter)

    @property
    def handled(self) -> int:
        return sum(self.results.values())


async def dispatch_due(
    store: Store,
    mailer: Mailer,
    ws: Workspace,
    campaigns: dict[str, Campaign],
    now: datetime,
    *,
    batch: int = 100,
    concurrency: int = 4,
    lease: timedelta = LEASE,
    claim: timedelta = CLAIM_LEASE,
    more: Callable[[], datetime | None] | None = None,
    stopping: Callable[[], bool] = lambda: False,
    incomplete: bool = False,
    held: frozenset[str] = frozenset(),
    spool: Spool | None = None,
) -> DispatchReport:
    """Claim due steps and carry each out: send the mail, or put the call on the list.

    One batch; with ``more``, further batches until one comes back short or makes no
    progress, or ``more`` returns None (stopping). ``more`` gives the time for the next
    batch, which is claimed while the last sends of this one are still in flight, so the
    SMTP connections never sit idle while the database works. Once ``stopping()`` is true
    no further mail goes out: what was claimed but not begun is put back, due at once for
    the next worker; if the pass is cancelled, the same happens to what had not begun.
    ``incomplete`` says some campaign file does not load now: an enrollment whose campaign
    is missing waits for the file to be fixed instead of ending; so does one of a ``held``
    campaign (its mail cannot be made now: a template of it is broken). Accepted sends the
    database cannot take are kept in ``spool`` until it can (:func:`reengage.spool.write_spooled`).
    What the pass claims is held for ``claim`` (at most ``lease``) and renewed while it
    runs; a mail's row marked sending is held for ``lease``.
    """
    report = DispatchReport()
    sent = SentLog(store, lease, stopping, spool)  # every database call of the pass, too
    prior = await sent.call(prior_for, store)  # one per pass: the rhythm as of now
    gate = asyncio.Semaphore(concurrency)
    in_flight: set[asyncio.Task[None]] = set()
    failed: list[BaseException] = []
    claim = min(lease, claim)
    renewer = asyncio.create_task(_keep_claims(sent, now, claim))
    try:
        while not failed:
            await sent.flush()
            claimed = await sent.call(store.sending.claim_due, now, batch, claim)
            if not claimed:
                break
            # Begun, a batch is started whole (its rows written, its sends under way), so a
            # cancellation meanwhile finds every row it wrote among the sends it cancels.
            progressed = await to_the_end(
                _start_batch(
                    store,
                    mailer,
                    ws,
                    campaigns,
                    claimed,
                    now,
                    claim,
                    gate,
                    report,
                    in_flight,
                    failed,
                    sent,
                    prior,
                    incomplete,
                    held,
                )
            )
            if more is None or len(claimed) < batch or progressed <= 0:
                break
            while len(in_flight) > concurrency:  # this batch's last round is under way
                await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            later = more()
            if later is None:
                break
            now = later
        await asyncio.gather(*in_flight, return_exceptions=True)
    except asyncio.CancelledError:  # as gather would: the sends are cancelled with us
        for task in in_flight:
            task.cancel()
        # Each cancelled send puts its row back if nothing of it went out: let them.
        await asyncio.gather(*in_flight, return_exceptions=True)
        raise
    except BaseException:
        # Whatever stopped the pass (the database went away while claiming the next batch),
        # the sends on the wire finish and their results are kept below, never orphaned;
        # those not begun find they cannot mark their rows and send nothing.
        await asyncio.gather(*in_flight, return_exceptions=True)
        raise
    finally:
        renewer.cancel()
        # What the server accepted is recorded, whatever stopped us (even a second cancel).
        await to_the_end(sent.flush())
    if report.handled:
        log.info("dispatch_pass", **dict(report.results))
    if failed:
        raise failed[0]
    return report


async def _start_batch(
    store: Store,
    mailer: Mailer,
    ws: Workspace,
    campaigns: dict[str, Campaign],
    claimed: list[Claimed],
    now: datetime,
    lease: timedelta,
    gate: asyncio.Semaphore,
    report: DispatchReport,
    in_flight: set[asyncio.Task[None]],
    failed: list[BaseException],
    sent: SentLog,
    prior: tuple[Population, LapseModel],
    incomplete: bool = False,
    held: frozenset[str] = frozenset(),
) -> int:
    """Decide every claimed item, commit the message rows, then start the sends as tasks.

    Returns how many items moved on (not put back for later or refused).
    """
    facts, outcomes, starts = await sent.call(
        _begin, store, ws, campaigns, claimed, now, lease, prior, incomplete, held
    )
    # The batch was decided as of ``now``; each send happens later (a slow server, the rate
    # limits), and its lease, its sent time and its next step's due time count from when it
    # really happens: ``now`` plus the time that has passed since.
    taken = time.monotonic()

    def moment() -> datetime:
        return now + timedelta(seconds=time.monotonic() - taken)

    plans: list[Planned] = []
    progressed = 0
    for outcome in outcomes:
        if isinstance(outcome, Planned):
            plans.append(outcome)
        else:
            report.results[outcome] += 1
            progressed += outcome not in PUT_OFF

    async def one(plan: Planned, started: Started) -> None:
        try:
            async with gate:
                if sent.stopping() and started.message_id is not None:
                    await sent.put_back(started, moment())  # stopping: nothing new goes out
                    report.results["put_back"] += 1
                    return
                clock = time.perf_counter()
                result = await deliver(store, mailer, ws, plan, started, now, facts, sent, moment)
                report.results[result] += 1
                _counter(result).inc()
                if result == "sent":
                    metrics.SEND_SECONDS.observe(time.perf_counter() - clock)
        except asyncio.CancelledError:  # waiting for a connection, or sending
            if started.message_id is not None:
                # Not handed over: due again at once; on the wire with no reply: unknown now.
                with contextlib.suppress(StoreError):
                    await sent.let_go(started, moment())
            raise
        finally:
            sent.done(started)

    for plan, started in zip(plans, starts, strict=True):
        progressed += started.message_id is not None
        sent.hold(started, plan.item.enrollment_id)
        task = asyncio.create_task(one(plan, started))
        in_flight.add(task)
        task.add_done_callback(lambda done: _finished(done, in_flight, failed))
    return progressed


def _begin(
    store: Store,
    ws: Workspace,
    campaigns: dict[str, Campaign],
    claimed: list[Claimed],
    now: datetime,
    lease: timedelta,
    prior: tuple[Population, LapseModel],
    incomplete: bool,
    held: frozenset[str],
) -> tuple[BatchFacts, list[str | Planned], list[Started]]:
    # A batch's reads, decisions and message rows: in a thread, off the event loop. Its
    # mails are made from the template files as they are now (looked at here, once).
    ws.renderer.refresh()
    facts, outcomes = decide_batch(store, ws, campaigns, claimed, now, incomplete, held)
    plans = [outcome for outcome in outcomes if isinstance(outcome, Planned)]
    # Every message row of the batch is written and committed together, before any SMTP.
    starts = store.sending.start_messages([(p.item, p.step.key) for p in plans], now, lease)
    if plans:  # the rhythm templates mention, as of the send moment, as preview shows it
        facts.assessments = assess_customers(
            store, now, customer_ids=[p.item.customer_id for p in plans], prior=prior
        )
    return facts, outcomes, starts


async def _keep_claims(sent: SentLog, started: datetime, claim: timedelta) -> None:
    """Renew what the pass claimed every third of ``claim`` while it runs."""
    clock = time.monotonic()
    while True:
        await asyncio.sleep(claim.total_seconds() / 3)
        elapsed = timedelta(seconds=time.monotonic() - clock)
        with contextlib.suppress(StoreError):  # the pass itself meets the outage
            await sent.renew(started + elapsed + claim)


def _finished(
    task: asyncio.Task[None], in_flight: set[asyncio.Task[None]], failed: list[BaseException]
) -> None:
    # A send that raised is kept to be raised by dispatch_due, never dropped unseen.
    in_flight.discard(task)
    if not task.cancelled() and task.exception() is not None:
        failed.append(task.exception())  # type: ignore[arg-type]  # checked just above


_COUNTERS: dict[str, Any] = {}


def _counter(result: str) -> Any:
    # reengage_sends_total{result=…}: looked up once per result, not once per mail.
    counter = _COUNTERS.get(result)
    if counter is None:
        counter = _COUNTERS[result] = metrics.SENDS.labels(result=result)
    return counter


def expire_leases(store: Store, now: datetime) -> int:
    """Sends whose process died become ``unknown`` and are reported, never re-sent blindly.

    Also keeps the ``reengage_unknown_messages`` gauge current for a scrape of /metrics.
    """
    count = store.sending.expire_leases(now)
    if count:
        log.warning("messages_unknown", count=count)
    count_held(store)
    return count


def count_held(store: Store) -> None:
    """Set the ``reengage_unknown_messages`` and ``reengage_failed_messages`` gauges."""
    counts = store.sending.message_counts()
    metrics.UNKNOWN.set(counts.get("unknown", 0))
    metrics.FAILED.set(counts.get("failed", 0))
