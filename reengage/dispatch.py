"""The sending pass: claim what is due, write the message rows, render, send, record.

``dispatch_due`` follows the sending protocol in docs/architecture.md — never sent twice,
never lost; the re-checks before a mail may go are in ``reengage.recheck``, the grouped
writes of the mails under way in ``reengage.sentlog``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from reengage import metrics
from reengage.campaigns import Campaign
from reengage.compose import Workspace, bounce_address, wire_for
from reengage.detect import Population
from reengage.errors import StoreError, TemplateFailure
from reengage.lapse_model import LapseModel
from reengage.logs import get_logger
from reengage.mailer import Mailer, Outcome
from reengage.recheck import PUT_OFF, BatchFacts, Planned, decide_batch
from reengage.retries import CLAIM_LEASE, LEASE, RETRY_BASE, RETRY_MAX
from reengage.scoring import assess_customers, prior_for
from reengage.sendtimes import next_step
from reengage.sentlog import SentLog, to_the_end
from reengage.spool import Spool, outcome_line
from reengage.store import Store
from reengage.store.sending import Claimed, Sent, Started

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
                result = await _deliver(store, mailer, ws, plan, started, now, facts, sent, moment)
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


async def _deliver(
    store: Store,
    mailer: Mailer,
    ws: Workspace,
    plan: Planned,
    started: Started,
    decided: datetime,
    facts: BatchFacts,
    sent: SentLog,
    moment: Callable[[], datetime],
) -> str:
    """Render, send and record one planned mail under its already-committed message row.

    The mail is made as of ``decided`` (the batch's moment, as ``preview`` at that moment
    shows it); ``moment()`` is the time now, for what is recorded."""
    item, campaign, step, index = plan.item, plan.campaign, plan.step, plan.index
    if started.message_id is None or started.token is None:
        log.warning(
            "send_refused",
            enrollment_id=item.enrollment_id,
            step=step.key,
            existing=started.refused,
        )
        if started.lease_until is None:  # else it stays claimed until that send's lease ends
            await sent.call(store.sending.release, item.enrollment_id)
        return f"refused_{started.refused}"
    found = facts.customers[item.customer_id]
    try:
        raw, smtp_id = wire_for(
            ws,
            campaign,
            step.key,
            found,
            facts.assessments.get(item.customer_id),
            message_key=started.token,
            now=decided,
            rep_name=facts.rep_names.get(found.rep_external_id or ""),
        )
    except Exception as exc:  # this customer's mail alone fails; everyone else gets theirs
        reason = _failure_reason(exc, campaign.id, step.key)
        await sent.call(
            store.sending.finish_failed,
            started.message_id,
            item.enrollment_id,
            reason=reason,
            now=moment(),
        )
        log.error(
            "message_not_rendered",
            enrollment_id=item.enrollment_id,
            campaign_id=campaign.id,
            step=step.key,
            customer=found.external_id,
            error=reason,
        )
        return "failed"
    envelope_sender = bounce_address(started.token, ws.bounce_domain(campaign), ws.secret)
    await mailer.pace(item.email)  # the rate limits' wait comes before the row is marked

    async def ready() -> bool:
        # Once a connection is this mail's: from here a worker that dies leaves it unknown;
        # before (waiting for its turn, or for a connection), it was never sent.
        return await sent.mark_sending(started, moment())

    result = await mailer.send(
        raw,
        sender=envelope_sender,
        recipient=item.email,
        paced=True,
        ready=ready,
        going_out=lambda: sent.going_out(started),
    )
    now = moment()  # when the server answered
    if result.outcome is Outcome.WITHDRAWN:
        log.warning("send_refused", enrollment_id=item.enrollment_id, step=step.key)
        await sent.call(store.sending.release, item.enrollment_id)
        return "refused_taken"
    if result.outcome is Outcome.SENT:
        sent.add(
            Sent(
                started.message_id,
                item,
                result.response,
                smtp_id,
                now,
                next_step(campaign, index, now),
            )
        )
        return "sent"
    message_id, enrollment_id, response = started.message_id, item.enrollment_id, result.response
    if result.outcome is Outcome.PERMANENT:
        await sent.record(
            lambda: store.sending.finish_bounced(message_id, item, response=response, now=now),
            outcome_line("bounced", message_id, enrollment_id, response, now, email=item.email),
        )
        log.info("message_bounced", enrollment_id=enrollment_id, response=response)
        return "bounced"
    if result.outcome is Outcome.REFUSED:  # the mail, not the address: nobody is suppressed
        reason = f"the mail server refused this mail: {response}"
        await sent.record(
            lambda: store.sending.finish_failed(message_id, enrollment_id, reason=reason, now=now),
            outcome_line("failed", message_id, enrollment_id, reason, now),
        )
        log.warning("message_refused", enrollment_id=enrollment_id, response=response)
        return "failed"
    if result.outcome is Outcome.UNKNOWN:  # it may have arrived: never sent twice by itself
        await sent.record(
            lambda: store.sending.finish_unknown(message_id, enrollment_id, response=response),
            outcome_line("unknown", message_id, enrollment_id, response, now),
        )
        log.warning(
            "message_unknown",
            enrollment_id=enrollment_id,
            customer=found.external_id,
            response=response,
        )
        return "unknown"
    try:
        attempts = await sent.call(store.sending.message_attempts, message_id)
    except StoreError:  # the database is away: the first delay, and the row written late
        attempts = 1
    delay = min(RETRY_BASE * 2 ** (attempts - 1), RETRY_MAX)
    jitter = delay * random.uniform(0, 0.25)  # spread retries so they do not arrive together
    retry_at = now + delay + jitter
    await sent.record(
        lambda: store.sending.finish_retry(
            message_id, enrollment_id, response=response, retry_at=retry_at
        ),
        outcome_line("retry", message_id, enrollment_id, response, now, retry_at=retry_at),
    )
    log.info("message_retry", enrollment_id=enrollment_id, response=response, attempts=attempts)
    return "retry"


_COUNTERS: dict[str, Any] = {}


def _counter(result: str) -> Any:
    # reengage_sends_total{result=…}: looked up once per result, not once per mail.
    counter = _COUNTERS.get(result)
    if counter is None:
        counter = _COUNTERS[result] = metrics.SENDS.labels(result=result)
    return counter


def _failure_reason(exc: Exception, campaign_id: str, step_key: str) -> str:
    """What a mail that could not be made is marked with: where to look, and what to fix."""
    if not isinstance(exc, TemplateFailure):
        return f"cannot make the mail: {exc}"
    if exc.file == "subject":  # a line of the campaign file, not a template
        return (
            f"campaign {campaign_id!r}, step {step_key!r}, subject: {exc.problem} "
            "(`reengage validate` shows its file and line)"
        )
    return str(exc)


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
