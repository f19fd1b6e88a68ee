"""The reps' morning mail: what it says and how it is made, for sending and for preview.

One rep's call list becomes the digest's template context (a card per client, with the
signed link to the outcome form), rendered in the rep's language into HTML and text parts
carrying the same facts. ``check_templates`` finds what would break it at send time;
``preview_digest`` writes it to disk. Sending, once per rep per day, is
:mod:`reengage.digest.sending`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from reengage.compose import Workspace
from reengage.config import Settings
from reengage.digest.calllist import CallItem, CallList, ListPolicy, build_lists
from reengage.digest.prompts import (
    ALWAYS_ASK,
    MailLine,
    person_to_ask,
    short_day,
    upcoming_dates,
)
from reengage.digest.reasons import tel_href, value_phrase
from reengage.i18n import Texts, shipped, texts
from reengage.message import Envelope, compose, dkim_sign, wire
from reengage.models import Customer, Rep
from reengage.render import TemplateProblem
from reengage.store import Store
from reengage.tokens import sign, stamp
from reengage.workdays import WorkingDays

HTML_TEMPLATE = "digest/digest.html.j2"
TEXT_TEMPLATE = "digest/digest.txt.j2"


@dataclass(frozen=True)
class DigestConfig:
    """What the digest settings say."""

    policy: ListPolicy = field(default_factory=ListPolicy)
    hour: int = 7
    window_hours: int = 8  # sent from ``hour`` until this many hours later (or midnight)
    sender: str = "Acme call list <calls@acme.example>"
    currency: str = "EUR"
    followup_campaign: str = "what-we-changed"
    link_days: int = 30
    days: WorkingDays = field(default_factory=WorkingDays)  # no digest on other local days

    @classmethod
    def from_settings(cls, settings: Settings) -> DigestConfig:
        """The digest as the settings describe it."""
        return cls(
            ListPolicy(settings.digest_size, settings.call_cooldown_days),
            settings.digest_hour,
            settings.digest_window_hours,
            settings.digest_from,
            settings.currency,
            settings.followup_campaign,
            settings.outcome_link_days,
            settings.working_days(),
        )


def outcome_link(ws: Workspace, rep: str, customer_id: int, day: date, issued: datetime) -> str:
    """The signed link to the outcome form for one client on one rep's list for one day."""
    token = sign(
        ws.secret, "call", {"c": customer_id, "r": rep, "d": day.isoformat(), "t": stamp(issued)}
    )
    return f"{ws.base_url}/call/{token}"


def _context(
    ws: Workspace, cfg: DigestConfig, call_list: CallList, now: datetime
) -> dict[str, Any]:
    name = " ".join(call_list.rep.name.split())  # a line break in a name never reaches text
    t = texts(call_list.rep.locale)
    return {
        "rep": {"name": name, "first_name": name.split(" ")[0] if name else ""},
        "day": call_list.day,
        "count": len(call_list.items),
        "more": call_list.more,
        "company": {"name": ws.company_name},
        "clients": [_card(ws, cfg, call_list, item, now, t) for item in call_list.items],
        "day_words": t.date(call_list.day, "full"),
        "lang": t.words,
        **t.in_template(),
    }


def check_templates(ws: Workspace, cfg: DigestConfig, now: datetime) -> list[TemplateProblem]:
    """What would break the digest at send time (for ``reengage validate``), found with a
    sample list that fills every part of the card, in every language reps get."""
    found: list[TemplateProblem] = []
    for locale in shipped():
        sample = _sample(now.date(), locale)
        context = _context(ws, cfg, sample, now)
        for problem in ws.renderer.check(
            subject="digest",
            template=ws.renderer.resolve(HTML_TEMPLATE, locale),
            text_template=ws.renderer.resolve(TEXT_TEMPLATE, locale),
            context=context,
        ):
            if problem not in found:
                found.append(problem)
    return found


def _sample(day: date, locale: str = "en") -> CallList:
    customer = Customer(
        id=1,
        external_id="sample",
        email="maria@bakery.example",
        first_name="Ana",
        last_name="Li",
        company="Ana's Bakery",
        phone="+49 30 1234567",
        decision_maker="Maria Li",
        decision_maker_role="Owner",
        interests=["espresso"],
    )
    item = CallItem(
        customer=customer,
        rank=1,
        priority=1000.0,
        value_at_risk=1200.0,
        value_per_year=1500.0,
        why=["Usually orders every 12 days; silent for 41 days (3.4× their rhythm)."],
        person=person_to_ask(customer),
        history=[MailLine(datetime.combine(day, time(9), UTC), "habit", "tip-1", ("opened",))],
        replies=["12 Nov: Can someone call me?"],
        last_call="03 Oct 2026; spoke to Maria Li; stopped over price",
        questions=list(ALWAYS_ASK),
        dates=upcoming_dates([{"label": "birthday", "date": day.isoformat()}], day),
        interests=["espresso"],
        headline="silent 41 days, usually every 12 days",
    )
    rep = Rep(external_id="sample", name="Dana Reyes", email="dana@acme.example", locale=locale)
    return CallList(rep, day, [item], 2)


def compose_digest(
    ws: Workspace, cfg: DigestConfig, call_list: CallList, now: datetime, key: str
) -> EmailMessage:
    """The exact digest mail: HTML and text parts carrying the same facts."""
    rep = call_list.rep
    count = len(call_list.items)
    context = _context(ws, cfg, call_list, now)
    locale = rep.locale or "en"
    html, text = ws.renderer.render_internal(
        ws.renderer.resolve(HTML_TEMPLATE, locale),
        ws.renderer.resolve(TEXT_TEMPLATE, locale),
        context,
    )
    t = texts(locale)
    subject = t.ngettext(
        "{n} client to call today, {day}", "{n} clients to call today, {day}", count
    ).format(n=count, day=short_day(call_list.day, t))
    domain = parseaddr(cfg.sender)[1].rpartition("@")[2] or "localhost"
    envelope = Envelope(
        sender=cfg.sender,
        to_name=rep.name,
        to_address=rep.email,
        message_id=f"digest-{key}@{domain}",
        date=now,
    )
    message = compose(subject, text, html, envelope)
    message["Content-Language"] = t.words  # the language its words are in (a shipped tag)
    return dkim_sign(message, ws.dkim) if ws.dkim else message


def _card(
    ws: Workspace,
    cfg: DigestConfig,
    call_list: CallList,
    item: CallItem,
    now: datetime,
    t: Texts,
) -> dict[str, Any]:
    """One client as plain data for the templates (the sandbox sees no objects).

    Whom to ask for and the account's own phone and email are kept apart: the person's
    phone and email are shown with them only when they are the person's own."""
    c = item.customer
    person = item.person
    own_phone = person.phone if person.phone and person.phone != c.phone else None
    own_email = person.email if person.email and person.email != c.email else None
    dial = own_phone or c.phone
    standing = t.gettext(person.standing) if person.standing else ""
    # Neither a decision maker nor a named contact on file: the customer is the one to ask.
    is_customer = not c.decision_maker and not any(x.get("name") for x in c.contacts)
    return {
        "rank": item.rank,
        "name": item.name,
        "company": c.company,
        "headline": item.headline or (item.why[0] if item.why else ""),
        "dial": {"phone": dial, "tel": tel_href(dial)},
        "person": {
            "name": person.name,
            "role": person.role,
            "standing": standing or (t.gettext("the customer") if is_customer else ""),
            "phone": own_phone,
            "tel": tel_href(own_phone),
            "email": own_email,
        },
        "account": {
            "name": c.company or item.name,
            "phone": c.phone,
            "tel": tel_href(c.phone),
            "email": c.email,
        },
        "why": item.why,
        "value": value_phrase(item.value_at_risk, item.value_per_year, cfg.currency, t),
        "value_at_risk": t.money(item.value_at_risk, cfg.currency),
        "history": [line.words(t) for line in item.history],
        "replies": item.replies,
        "last_call": item.last_call,
        "questions": item.questions,
        "dates": [d.words(t) for d in item.dates],
        "interests": item.interests,
        "link": outcome_link(ws, call_list.rep.external_id, c.id or 0, call_list.day, now),
    }


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
