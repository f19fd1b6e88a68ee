"""One planned mail of a sending pass: made, sent under its committed message row, and its
outcome recorded.

:func:`reengage.dispatch.dispatch_due` decides and claims; this carries out steps 4 to 6 of
the sending protocol in docs/architecture.md for one mail: the rate limits' wait, the row
marked sending just before the bytes go out, then sent, bounced, failed, unknown or a retry
with backoff — through ``SentLog``, so an outcome the database cannot take is spooled.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

from reengage.compose import Workspace, bounce_address, wire_for
from reengage.errors import StoreError, TemplateFailure
from reengage.logs import get_logger
from reengage.mailer import Mailer, Outcome
from reengage.recheck import BatchFacts, Planned
from reengage.retries import RETRY_BASE, RETRY_MAX
from reengage.sendtimes import next_step
from reengage.sentlog import SentLog
from reengage.spool import outcome_line
from reengage.store import Store
from reengage.store.sending import Sent, Started

log = get_logger(__name__)


async def deliver(
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
        reason = failure_reason(exc, campaign.id, step.key)
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


def failure_reason(exc: Exception, campaign_id: str, step_key: str) -> str:
    """What a mail that could not be made is marked with: where to look, and what to fix."""
    if not isinstance(exc, TemplateFailure):
        return f"cannot make the mail: {exc}"
    if exc.file == "subject":  # a line of the campaign file, not a template
        return (
            f"campaign {campaign_id!r}, step {step_key!r}, subject: {exc.problem} "
            "(`reengage validate` shows its file and line)"
        )
    return str(exc)
