"""The reps' morning mail: compose it, and send it once per rep per local day.

Sending follows the campaign protocol: the digest row (unique on rep and day) is written
and committed before SMTP is touched, so two ticks in the same morning, or two workers on
one database, send each rep exactly one digest. A 4xx reply is retried with backoff the
same day; a 5xx marks it failed; a process that dies mid-send leaves it ``unknown``
(reported by ``reengage doctor``), never sent twice. A day with nobody to call is written
as ``empty`` and nothing is sent.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from reengage.authoring import Workspace
from reengage.config import Settings
from reengage.digest.calllist import CallItem, CallList, ListPolicy, build_lists, rep_zone
from reengage.digest.prompts import money
from reengage.logs import get_logger
from reengage.mailer import Mailer, Outcome
from reengage.message import Envelope, compose, dkim_sign, raw_header, wire
from reengage.models import DigestStatus, Rep
from reengage.store import Store
from reengage.tokens import sign, stamp

log = get_logger(__name__)
HTML_TEMPLATE = "digest/digest.html.j2"
TEXT_TEMPLATE = "digest/digest.txt.j2"
LEASE = timedelta(minutes=10)
RETRY_BASE = timedelta(minutes=5)


@dataclass(frozen=True)
class DigestConfig:
    """What the digest settings say."""

    policy: ListPolicy = field(default_factory=ListPolicy)
    hour: int = 7
    sender: str = "Acme call list <calls@acme.example>"
    currency: str = "EUR"
    followup_campaign: str = "what-we-changed"
    link_days: int = 30

    @classmethod
    def from_settings(cls, settings: Settings) -> DigestConfig:
        """The digest as the settings describe it."""
        return cls(
            ListPolicy(settings.digest_size, settings.call_cooldown_days),
            settings.digest_hour,
            settings.digest_from,
            settings.currency,
            settings.followup_campaign,
            settings.outcome_link_days,
        )


def outcome_link(ws: Workspace, rep: str, customer_id: int, day: date, issued: datetime) -> str:
    """The signed link to the outcome form for one client on one rep's list for one day."""
    token = sign(
        ws.secret, "call", {"c": customer_id, "r": rep, "d": day.isoformat(), "t": stamp(issued)}
    )
    return f"{ws.base_url}/call/{token}"


def compose_digest(
    ws: Workspace, cfg: DigestConfig, call_list: CallList, now: datetime, key: str
) -> EmailMessage:
    """The exact digest mail: HTML and text parts carrying the same facts."""
    rep = call_list.rep
    name = " ".join(rep.name.split())  # a line break in a name never reaches the text
    count = len(call_list.items)
    context = {
        "rep": {"name": name, "first_name": name.split(" ")[0] if name else ""},
        "day": call_list.day,
        "count": count,
        "more": call_list.more,
        "company": {"name": ws.company_name},
        "clients": [_card(ws, cfg, call_list, item, now) for item in call_list.items],
    }
    html, text = ws.renderer.render_internal(HTML_TEMPLATE, TEXT_TEMPLATE, context)
    subject = f"{count} client{'s' if count != 1 else ''} to call today, {call_list.day:%a %d %b}"
    domain = parseaddr(cfg.sender)[1].rpartition("@")[2] or "localhost"
    envelope = Envelope(
        sender=cfg.sender,
        to_name=rep.name,
        to_address=rep.email,
        message_id=f"digest-{key}@{domain}",
        date=now,
    )
    message = compose(subject, text, html, envelope)
    return dkim_sign(message, ws.dkim) if ws.dkim else message


def _card(
    ws: Workspace, cfg: DigestConfig, call_list: CallList, item: CallItem, now: datetime
) -> dict[str, Any]:
    """One client as plain data for the templates (the sandbox sees no objects)."""
    c = item.customer
    return {
        "rank": item.rank,
        "name": item.name,
        "company": c.company,
        "person": {
            "name": item.person.name,
            "role": item.person.role,
            "phone": item.person.phone,
            "email": item.person.email,
            "standing": item.person.standing,
        },
        "why": item.why,
        "value_at_risk": money(item.value_at_risk, cfg.currency),
        "value_per_year": money(item.value_per_year, cfg.currency),
        "history": [str(line) for line in item.history],
        "replies": item.replies,
        "last_call": item.last_call,
        "questions": item.questions,
        "dates": [str(d) for d in item.dates],
        "interests": item.interests,
        "link": outcome_link(ws, call_list.rep.external_id, c.id or 0, call_list.day, now),
    }


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
    """Send each rep whose morning has come (any hour with ``anytime``) today's digest, once."""
    report = DigestReport(unknown=store.calls.expire_digests(now))
    for row in store.calls.claim_retry(now, lease):
        lists = build_lists(store, now, cfg.policy, reps=[row.rep_external_id], day=row.day)
        if lists:
            result = await _send(store, mailer, ws, cfg, lists[0], now, row.id, row.token)
            report.results[result] += 1
    due: list[str] = []
    for rep in store.calls.reps(reps):
        local = now.astimezone(rep_zone(rep))
        if not anytime and local.hour < cfg.hour:
            continue
        if rep.external_id not in store.calls.digests_on(local.date()):
            due.append(rep.external_id)
    if not due:
        return report
    for call_list in build_lists(store, now, cfg.policy, reps=due):
        key = secrets.token_urlsafe(16)
        status = DigestStatus.EMPTY if call_list.empty else DigestStatus.SENDING
        digest_id = store.calls.start_digest(
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
    message = compose_digest(ws, cfg, call_list, now, key)
    sender = parseaddr(cfg.sender)[1]
    result = await mailer.send(wire(message), sender=sender, recipient=call_list.rep.email)
    if result.outcome is Outcome.SENT:
        store.calls.finish_digest(
            digest_id,
            DigestStatus.SENT,
            response=result.response,
            now=now,
            message_id=raw_header(message, "Message-ID"),
        )
        return "sent"
    if result.outcome is Outcome.PERMANENT:
        store.calls.finish_digest(digest_id, DigestStatus.FAILED, response=result.response, now=now)
        log.warning("digest_refused", rep=call_list.rep.external_id, response=result.response)
        return "failed"
    store.calls.finish_digest(
        digest_id,
        DigestStatus.RETRY,
        response=result.response,
        now=now,
        retry_at=now + RETRY_BASE,
    )
    return "retry"


@dataclass(frozen=True)
class DigestPreview:
    """A digest written to disk, not sent."""

    call_list: CallList
    eml: Path | None
    html: Path | None


def preview_digest(
    store: Store,
    ws: Workspace,
    cfg: DigestConfig,
    rep: Rep,
    now: datetime,
    out_dir: Path,
    *,
    day: date | None = None,
) -> DigestPreview:
    """Write the exact mail ``rep`` would get (for ``day``) as .eml and .html; send nothing."""
    lists = build_lists(store, now, cfg.policy, reps=[rep.external_id], day=day)
    call_list = lists[0]
    if call_list.empty:
        return DigestPreview(call_list, None, None)
    message = compose_digest(ws, cfg, call_list, now, "preview")
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"digest-{_safe(rep.external_id)}-{call_list.day.isoformat()}"
    eml = out_dir / f"{stem}.eml"
    eml.write_bytes(wire(message))
    html = out_dir / f"{stem}.html"
    body = message.get_body(("html",))
    html.write_text(str(body.get_content()) if body else "", encoding="utf-8")
    return DigestPreview(call_list, eml, html)


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)[:60] or "rep"
