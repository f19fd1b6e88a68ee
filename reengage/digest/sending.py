"""The reps' morning digests sent: once per rep per local day, on the rep's working days.

Sending follows the campaign protocol: the digest row (unique on rep and day) is written
and committed before SMTP is touched, so two ticks in the same morning, or two workers on
one database, send each rep exactly one digest. A 4xx reply is retried with backoff the
same day; a 5xx marks it failed; a process that dies mid-send leaves it ``unknown``
(reported by ``reengage doctor``), never sent twice. A day with nobody to call is written
as ``empty`` and nothing is sent. The mail itself is made by :mod:`reengage.digest.mail`.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.utils import parseaddr
from typing import Any

from reengage.compose import Workspace
from reengage.digest.calllist import CallList, build_lists, rep_zone
from reengage.digest.mail import DigestConfig, compose_digest
from reengage.errors import TemplateFailure
from reengage.logs import get_logger
from reengage.mailer import Mailer, Outcome
from reengage.message import raw_header, wire
from reengage.models import DigestStatus
from reengage.retries import DIGEST_RETRY as RETRY_BASE
from reengage.retries import LEASE
from reengage.store import Store
from reengage.workdays import digest_day

log = get_logger(__name__)


@dataclass
class DigestReport:
    """What one digest pass did, by result (sent, empty, retry, failed, ...)."""

    results: Counter[str] = field(default_factory=Counter)
    unknown: int = 0


async def send_digests(
    store: Store,
    mailer: Mailer,
    ws: Workspace,
    cfg: DigestConfig,
    now: datetime,
    *,
    reps: list[str] | None = None,
    anytime: bool = False,
    lease: timedelta = LEASE,
) -> DigestReport:
    """Send each rep whose morning has come (any hour with ``anytime``) today's digest, once.
    A rep whose digest window has passed for the day (the daemon was down, or started in
    the evening) gets none that day: the next comes the next morning. Nobody gets one on a
    day off (``cfg.days``, the rep's local date), not even with ``anytime``; what was due
    is on the next working day's list."""
    # Every database call and every list built runs in a thread (each rep's list reads and
    # scores that rep's candidates), so the daemon's event loop keeps sending mail and
    # answering /healthz and inbound mail meanwhile.
    report = DigestReport(unknown=await asyncio.to_thread(store.calls.expire_digests, now))
    for row in await asyncio.to_thread(store.calls.claim_retry, now, lease):
        lists = await asyncio.to_thread(
            build_lists, store, now, cfg.policy, reps=[row.rep_external_id], day=row.day
        )
        if lists:
            result = await _send(store, mailer, ws, cfg, lists[0], now, row.id, row.token)
            report.results[result] += 1
    lists, off = await asyncio.to_thread(_lists_due, store, cfg, now, reps, anytime)
    if off:
        report.results["day_off"] += off
    for call_list in lists:
        key = secrets.token_urlsafe(16)
        status = DigestStatus.EMPTY if call_list.empty else DigestStatus.SENDING
        digest_id = await asyncio.to_thread(
            store.calls.start_digest,
            call_list.rep.external_id,
            call_list.day,
            token=key,
            customer_ids=[item.customer.id for item in call_list.items],
            more=call_list.more,
            status=status,
            now=now,
            lease=lease,
        )
        if digest_id is None:
            report.results["already_sent"] += 1  # another worker or tick got there first
            continue
        if call_list.empty:
            report.results["empty"] += 1
            continue
        report.results[await _send(store, mailer, ws, cfg, call_list, now, digest_id, key)] += 1
    if report.results:
        log.info("digest_pass", unknown=report.unknown, **dict(report.results))
    return report


def _lists_due(
    store: Store, cfg: DigestConfig, now: datetime, reps: list[str] | None, anytime: bool
) -> tuple[list[CallList], int]:
    # The lists of reps whose morning has come on a working day and who have no digest for
    # their day yet; and how many reps had the day off (for `digest send` to say).
    due: list[str] = []
    off = 0
    hour, window = (0, 24) if anytime else (cfg.hour, cfg.window_hours)
    written: dict[date, dict[str, str]] = {}  # one query per local day, not one per rep
    for rep in store.calls.reps(reps):
        day = digest_day(now, rep_zone(rep), cfg.days, hour, window)
        if day is None:
            # Before the rep's morning, too late in their day, or a day off: a later day's.
            if anytime:  # only `digest send` says so; the daemon's ticks stay quiet
                off += 1
            continue
        if day not in written:
            written[day] = store.calls.digests_on(day)
        if rep.external_id not in written[day]:
            due.append(rep.external_id)
    return (build_lists(store, now, cfg.policy, reps=due) if due else []), off


async def _send(
    store: Store,
    mailer: Mailer,
    ws: Workspace,
    cfg: DigestConfig,
    call_list: CallList,
    now: datetime,
    digest_id: int,
    key: str,
) -> str:
    async def finish(status: DigestStatus, **fields: Any) -> None:
        await asyncio.to_thread(store.calls.finish_digest, digest_id, status, **fields)

    try:
        message = await asyncio.to_thread(compose_digest, ws, cfg, call_list, now, key)
    except TemplateFailure as exc:  # one broken template must not stop the other reps
        await finish(DigestStatus.FAILED, response=str(exc), now=now)
        log.error("digest_not_rendered", rep=call_list.rep.external_id, error=str(exc))
        return "failed"
    sender = parseaddr(cfg.sender)[1]
    result = await mailer.send(wire(message), sender=sender, recipient=call_list.rep.email)
    if result.outcome is Outcome.SENT:
        await finish(
            DigestStatus.SENT,
            response=result.response,
            now=now,
            message_id=raw_header(message, "Message-ID"),
        )
        return "sent"
    if result.outcome in (Outcome.PERMANENT, Outcome.REFUSED):
        await finish(DigestStatus.FAILED, response=result.response, now=now)
        log.warning("digest_refused", rep=call_list.rep.external_id, response=result.response)
        return "failed"
    if result.outcome is Outcome.UNKNOWN:  # it may have arrived: `digest send --again` decides
        await finish(DigestStatus.UNKNOWN, response=result.response, now=now)
        log.warning("digest_unknown", rep=call_list.rep.external_id, response=result.response)
        return "unknown"
    await finish(
        DigestStatus.RETRY,
        response=result.response,
        now=now,
        retry_at=now + RETRY_BASE,
    )
    return "retry"
