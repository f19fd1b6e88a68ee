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
from reengage.i18n import DEFAULT, Texts, texts
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

    def words(self, t: Texts) -> str:
        """The line in the rep's language: ``birthday (10 years): Sat 28 Nov, in 5 days``."""
        if self.in_days == 0:
            when = t.gettext("today")
        elif self.in_days == 1:
            when = t.gettext("tomorrow")
        else:
            when = t.ngettext("in {n} day", "in {n} days", self.in_days).format(n=self.in_days)
        label = t.gettext(self.label)  # "birthday" and other common labels may be translated
        if self.years:
            label = t.ngettext("{label} ({n} year)", "{label} ({n} years)", self.years).format(
                label=label, n=self.years
            )
        return t.gettext("{label}: {day}, {when}").format(
            label=label, day=short_day(self.on, t), when=when
        )


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

    def words(self, t: Texts) -> str:
        """The line in the rep's language (campaign and step names stay as written)."""
        what = f"{self.campaign_id} · {self.step_key}" if self.campaign_id else t.gettext("mail")
        done = ", ".join(self.did) if self.did else t.gettext("no response")
        return f"{t.date(self.sent, t.gettext('dd MMM'))}: {what} — {done}"


def short_day(day: date | datetime, t: Texts) -> str:
    """A day of the coming weeks as the rep's locale writes it: ``Mon 23 Nov``, ``11月23日周一``
    (the pattern is in the message catalogue, so each language picks its own order)."""
    return t.date(day, t.gettext("EEE dd MMM"))


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


def mail_history(
    touches: Sequence[Touch], zone: ZoneInfo, t: Texts | None = None
) -> list[MailLine]:
    """Each mail sent, newest first, with what the customer did with it (in ``t``'s words)."""
    t = t or texts(DEFAULT)
    sent = [t for t in touches if t.kind == "sent"]
    lines: list[MailLine] = []
    for mail in sent:
        did = []
        seen: set[str] = set()
        for touch in touches:
            same = touch.campaign_id == mail.campaign_id and touch.step_key == mail.step_key
            kind = touch.kind
            if kind == "sent" or not same or kind in seen or kind == "conversion":
                continue
            seen.add(kind)
            day = t.date(touch.at.astimezone(zone), t.gettext("dd MMM"))
            did.append(f"{t.gettext(_TOUCH_WORDS.get(kind, kind))} {day}")
        lines.append(
            MailLine(mail.at.astimezone(zone), mail.campaign_id, mail.step_key, tuple(did))
        )
    return sorted(lines, key=lambda line: line.sent, reverse=True)


def last_call_words(call: PastCall | None, zone: ZoneInfo, t: Texts | None = None) -> str | None:
    """The last call in one line: when, whom, why they stopped, what was agreed."""
    if call is None:
        return None
    t = t or texts(DEFAULT)
    parts = [t.date(call.called_at.astimezone(zone), t.gettext("dd MMM yyyy"))]
    if call.reached == "nobody":
        parts.append(t.gettext("no answer"))
    else:
        who = call.contact_name or (
            t.gettext("the decision maker")
            if call.reached == "decision_maker"
            else t.gettext("someone else")
        )
        parts.append(t.gettext("spoke to {who}").format(who=who))
    if call.reason:
        cause = reason_words(call.reason, t)
        scope = f", {t.gettext(call.scope)}" if call.scope and call.scope != "unsure" else ""
        note = f" — “{_clip(call.reason_text, 160)}”" if call.reason_text else ""
        parts.append(t.gettext("stopped over {cause}").format(cause=f"{cause}{scope}") + note)
    if call.win_back:
        parts.append(
            t.gettext("would come back for: “{what}”").format(what=_clip(call.win_back, 160))
        )
    step = call.next_step.replace("_", " ")
    step = t.gettext(step) if step else step  # gettext("") is the catalogue's header
    parts.append(t.gettext("next: {step}").format(step=step))
    return t.gettext("; ").join(parts)


MAX_QUESTIONS = 5  # the two every call asks, then the most relevant tailored ones


@dataclass(frozen=True)
class Prompt:
    """A question fitted to one customer, and how relevant it is (higher: asked first)."""

    relevance: float
    text: str


def tailored(
    assessment: Assessment | None,
    customer: Customer,
    touches: Sequence[Touch],
    last_call: PastCall | None,
    reply: WaitingReply | None,
    t: Texts | None = None,
) -> list[Prompt]:
    """Every prompt this customer's signals call for, most relevant first: what they wrote,
    what they said last time, how they want to be reached, how far their orders fell, what
    they clicked, then what they bought and care about."""
    t = t or texts(DEFAULT)
    found: list[Prompt] = []
    profile = assessment.profile if assessment else None
    if reply is not None:
        found.append(
            Prompt(
                100,
                t.gettext("They wrote back (“{text}”): start from what they said.").format(
                    text=_clip(reply.text, 120)
                ),
            )
        )
    if last_call is not None and last_call.reason and last_call.reason != "habit":
        found.append(
            Prompt(
                90,
                t.gettext(
                    "Last time they mentioned {cause}: be ready to explain what has changed since."
                ).format(cause=reason_words(last_call.reason, t)),
            )
        )
    kinds = {touch.kind for touch in touches}
    if "unsubscribe" in kinds or "complaint" in kinds:
        found.append(
            Prompt(
                85,
                t.gettext("They asked for no more email: ask how they would rather hear from us."),
            )
        )
    if "bounce" in kinds:
        found.append(Prompt(80, t.gettext("Their email address bounced: check it with them.")))
    if profile and profile.aov_ratio is not None and profile.aov_ratio <= DECLINE_THRESHOLD:
        found.append(
            Prompt(
                70 + 10 * (1 - profile.aov_ratio),
                t.gettext(
                    "Their orders are {percent}% smaller: has their volume changed, or do they "
                    "now buy part of it from someone else?"
                ).format(percent=f"{100 * (1 - profile.aov_ratio):.0f}"),
            )
        )
    if profile and profile.count_ratio is not None and profile.count_ratio <= DECLINE_THRESHOLD:
        found.append(
            Prompt(
                70 + 10 * (1 - profile.count_ratio),
                t.gettext(
                    "They order less often than before: is a competitor supplying them, or did "
                    "their needs change?"
                ),
            )
        )
    clicked = [touch for touch in touches if touch.kind == "click" and touch.detail]
    if clicked:
        found.append(
            Prompt(
                50,
                t.gettext("They clicked {link}: did they find what they were looking for?").format(
                    link=_clip(clicked[-1].detail, 80)
                ),
            )
        )
    if profile and profile.order_count == 1:
        found.append(Prompt(45, t.gettext("They ordered only once: how did that first order go?")))
    elif customer.last_product:
        found.append(
            Prompt(
                40,
                t.gettext("They last bought {product}: how is it working for them?").format(
                    product=customer.last_product
                ),
            )
        )
    if customer.interests:
        found.append(
            Prompt(
                30,
                t.gettext("They care about {interests}: mention what is new there.").format(
                    interests=", ".join(customer.interests[:3])
                ),
            )
        )
    return sorted(found, key=lambda p: -p.relevance)  # stable: ties keep the order above


def questions(
    assessment: Assessment | None,
    customer: Customer,
    touches: Sequence[Touch],
    last_call: PastCall | None,
    reply: WaitingReply | None,
    t: Texts | None = None,
) -> list[str]:
    """At most :data:`MAX_QUESTIONS`: the two every call asks, then the most relevant of
    the prompts fitted to this customer's signals (:func:`tailored`)."""
    t = t or texts(DEFAULT)
    fitted = tailored(assessment, customer, touches, last_call, reply, t)
    asks = [t.gettext(q) for q in ALWAYS_ASK]
    return asks + [p.text for p in fitted[: MAX_QUESTIONS - len(asks)]]


def reason_words(reason: str, t: Texts | None = None) -> str:
    """A stop reason as a rep says it, in their language."""
    words = REASON_WORDS.get(reason, reason)
    return (t or texts(DEFAULT)).gettext(words) if reason in REASON_WORDS else words


def _clip(text: str | None, limit: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
