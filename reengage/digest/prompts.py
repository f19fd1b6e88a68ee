"""What a rep needs on one screen before dialling: whom to ask for, what happened, what to ask.

Pure functions of a customer's file, their detection numbers and what reengage already
did; no I/O. Every sentence is plain words a rep can read out, never a score.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from reengage.detect import DECLINE_THRESHOLD, Assessment
from reengage.models import Customer, StopReason
from reengage.store.calls import PastCall, Touch, WaitingReply
from reengage.timeutil import UNKNOWN_YEAR

ALWAYS_ASK = (
    "Why did you decide to stop?",
    "What could we do to win you back?",
)
UPCOMING_DAYS = 14

# Titles in the order a rep would rather reach them: whoever decides on the spend.
_SENIORITY = (
    "owner",
    "founder",
    "ceo",
    "chief",
    "president",
    "managing director",
    "general manager",
    "partner",
    "director",
    "head",
    "vp",
    "vice president",
    "purchasing",
    "procurement",
    "buyer",
    "manager",
    "lead",
)

REASON_WORDS = {
    StopReason.PRICE.value: "price",
    StopReason.SERVICE.value: "service",
    StopReason.QUALITY.value: "quality",
    StopReason.DELIVERY.value: "delivery",
    StopReason.COMPETITOR.value: "went to a competitor",
    StopReason.NO_LONGER_NEEDED.value: "no longer needs it",
    StopReason.HABIT.value: "habit lapsed / just forgot",
    StopReason.INTERNAL_CHANGE.value: "internal change",
    StopReason.OTHER.value: "other",
}

_TOUCH_WORDS = {
    "open": "opened",
    "click": "clicked",
    "reply": "replied",
    "auto_reply": "auto-replied",
    "unsubscribe": "unsubscribed",
    "pause": "paused mail",
    "bounce": "bounced",
    "soft_bounce": "soft-bounced",
    "complaint": "marked as spam",
    "delivered": "delivered",
    "conversion": "ordered",
}


@dataclass(frozen=True)
class Person:
    """Whom to ask for, and how to reach them."""

    name: str
    role: str | None
    phone: str | None
    email: str | None
    standing: str  # "decision maker", "most senior contact known", or "" (the customer)


@dataclass(frozen=True)
class Upcoming:
    """An important date in the next two weeks: a reason to call."""

    label: str
    on: date
    in_days: int
    years: int | None  # "10 years" for an anniversary whose year we know

    def __str__(self) -> str:
        when = (
            "today"
            if self.in_days == 0
            else ("tomorrow" if self.in_days == 1 else f"in {self.in_days} days")
        )
        years = f" ({self.years} years)" if self.years else ""
        return f"{self.label}{years}: {self.on:%a %d %b}, {when}"


@dataclass(frozen=True)
class MailLine:
    """One mail reengage sent, and what the customer did with it."""

    sent: datetime
    campaign_id: str | None
    step_key: str | None
    did: tuple[str, ...]  # "opened 8 Nov", "clicked 8 Nov"

    def __str__(self) -> str:
        what = f"{self.campaign_id} · {self.step_key}" if self.campaign_id else "mail"
        done = ", ".join(self.did) if self.did else "no response"
        return f"{self.sent:%d %b}: {what} — {done}"


def person_to_ask(customer: Customer) -> Person:
    """The decision maker, else the most senior contact known, else the customer."""
    if customer.decision_maker:
        known = _contact_named(customer.contacts, customer.decision_maker)
        return Person(
            customer.decision_maker,
            customer.decision_maker_role or known.get("role"),
            known.get("phone") or customer.phone,
            known.get("email") or (None if known else customer.email),
            "decision maker",
        )
    ranked = sorted(
        (c for c in customer.contacts if c.get("name")), key=lambda c: _seniority(c.get("role"))
    )
    if ranked:
        best = ranked[0]
        return Person(
            best["name"],
            best.get("role"),
            best.get("phone") or customer.phone,
            best.get("email") or customer.email,
            "most senior contact known" if len(ranked) > 1 else "",
        )
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    return Person(name or customer.email, None, customer.phone, customer.email, "")


def _contact_named(contacts: Sequence[dict[str, str]], name: str) -> dict[str, str]:
    wanted = name.strip().casefold()
    return next((c for c in contacts if c.get("name", "").strip().casefold() == wanted), {})


def _seniority(role: str | None) -> int:
    text = (role or "").casefold()
    return next((i for i, word in enumerate(_SENIORITY) if word in text), len(_SENIORITY))


def upcoming_dates(
    important: Iterable[dict[str, str]], today: date, days: int = UPCOMING_DAYS
) -> list[Upcoming]:
    """Birthdays, anniversaries and other yearly dates falling in the next ``days`` days.

    Every date recurs yearly; UNKNOWN_YEAR means the year is unknown (no "N years").
    A 29 February falls on 28 February in other years.
    """
    found: list[Upcoming] = []
    for entry in important:
        try:
            original = date.fromisoformat(str(entry.get("date", "")))
        except ValueError:
            continue
        label = str(entry.get("label") or "important date")
        for year in (today.year, today.year + 1):
            day = min(original.day, calendar.monthrange(year, original.month)[1])
            when = date(year, original.month, day)
            ahead = (when - today).days
            if 0 <= ahead <= days:
                years = year - original.year if original.year != UNKNOWN_YEAR else None
                found.append(Upcoming(label, when, ahead, years if years and years > 0 else None))
                break
    return sorted(found, key=lambda u: u.in_days)


def mail_history(touches: Sequence[Touch], zone: ZoneInfo) -> list[MailLine]:
    """Each mail sent, newest first, with what the customer did with it."""
    sent = [t for t in touches if t.kind == "sent"]
    lines: list[MailLine] = []
    for mail in sent:
        did = []
        seen: set[str] = set()
        for t in touches:
            same = t.campaign_id == mail.campaign_id and t.step_key == mail.step_key
            if t.kind == "sent" or not same or t.kind in seen or t.kind == "conversion":
                continue
            seen.add(t.kind)
            did.append(f"{_TOUCH_WORDS.get(t.kind, t.kind)} {t.at.astimezone(zone):%d %b}")
        lines.append(
            MailLine(mail.at.astimezone(zone), mail.campaign_id, mail.step_key, tuple(did))
        )
    return sorted(lines, key=lambda line: line.sent, reverse=True)


def last_call_words(call: PastCall | None, zone: ZoneInfo) -> str | None:
    """The last call in one line: when, whom, why they stopped, what was agreed."""
    if call is None:
        return None
    parts = [f"{call.called_at.astimezone(zone):%d %b %Y}"]
    if call.reached == "nobody":
        parts.append("no answer")
    else:
        who = call.contact_name or (
            "the decision maker" if call.reached == "decision_maker" else "someone else"
        )
        parts.append(f"spoke to {who}")
    if call.reason:
        cause = REASON_WORDS.get(call.reason, call.reason)
        scope = f", {call.scope}" if call.scope and call.scope != "unsure" else ""
        note = f" — “{_clip(call.reason_text, 160)}”" if call.reason_text else ""
        parts.append(f"stopped over {cause}{scope}{note}")
    if call.win_back:
        parts.append(f"would come back for: “{_clip(call.win_back, 160)}”")
    parts.append(f"next: {call.next_step.replace('_', ' ')}")
    return "; ".join(parts)


def questions(
    assessment: Assessment | None,
    customer: Customer,
    touches: Sequence[Touch],
    last_call: PastCall | None,
    reply: WaitingReply | None,
) -> list[str]:
    """The two questions every call asks, then prompts fitted to this customer's signals."""
    asks = list(ALWAYS_ASK)
    profile = assessment.profile if assessment else None
    if reply is not None:
        asks.append(f"They wrote back (“{_clip(reply.text, 120)}”): start from what they said.")
    if profile and profile.aov_ratio is not None and profile.aov_ratio <= DECLINE_THRESHOLD:
        asks.append(
            f"Their orders are {100 * (1 - profile.aov_ratio):.0f}% smaller: has their volume "
            "changed, or do they now buy part of it from someone else?"
        )
    if profile and profile.count_ratio is not None and profile.count_ratio <= DECLINE_THRESHOLD:
        asks.append(
            "They order less often than before: is a competitor supplying them, or did their "
            "needs change?"
        )
    if last_call is not None and last_call.reason and last_call.reason != "habit":
        cause = REASON_WORDS.get(last_call.reason, last_call.reason)
        asks.append(
            f"Last time they mentioned {cause}: be ready to explain what has changed since."
        )
    kinds = {t.kind for t in touches}
    clicked = [t for t in touches if t.kind == "click" and t.detail]
    if clicked:
        asks.append(
            f"They clicked {_clip(clicked[-1].detail, 80)}: did they find what they were "
            "looking for?"
        )
    if "unsubscribe" in kinds or "complaint" in kinds:
        asks.append("They asked for no more email: ask how they would rather hear from us.")
    if "bounce" in kinds:
        asks.append("Their email address bounced: check it with them.")
    if profile and profile.order_count == 1:
        asks.append("They ordered only once: how did that first order go?")
    elif customer.last_product:
        asks.append(f"They last bought {customer.last_product}: how is it working for them?")
    if customer.interests:
        asks.append(
            f"They care about {', '.join(customer.interests[:3])}: mention what is new there."
        )
    return asks


def money(value: float, currency: str) -> str:
    """``1,240 EUR``: whole units, grouped."""
    return f"{value:,.0f} {currency}"


def _clip(text: str | None, limit: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
