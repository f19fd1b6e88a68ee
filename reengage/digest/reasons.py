"""Why a client is worth a call today, strongest signal first, in the rep's language.

Pure words from a candidate's calls, reply and detection numbers (no I/O, no clock): what
put them on the list on purpose first, then the card's "why now" signals (the silence, the
declines, then what of the history's shape raised the lapse score: visits spacing out,
baskets shrinking, irregular for them, slower than their peers), the
one-line reason of the digest's compact list, the value at risk as one phrase, and the
``tel:`` address of a phone number. A client still buying on rhythm but buying less is
a call about the decline, so the decline leads and the silence (short, on rhythm) follows;
a client past their rhythm is a call about the silence, so it leads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from reengage.detect import DECLINE_THRESHOLD, Assessment, driver_lines
from reengage.i18n import Texts

if TYPE_CHECKING:
    from reengage.digest.selection import Candidate
    from reengage.store.calls import OpenCall

NEARLY_ALL = 0.95  # a value at risk this close to the yearly spend is "nearly all" of it


@dataclass(frozen=True)
class Reason:
    """One signal: its sentence on the card, its few words in the compact list, and how
    strong it is (the stronger, the earlier)."""

    line: str
    short: str
    strength: float


def days(t: Texts, count: float) -> str:
    """``1 day``, ``41 days`` in the rep's language."""
    whole = round(count)
    return t.ngettext("{n} day", "{n} days", whole).format(n=whole)


def signals(a: Assessment, t: Texts) -> list[Reason]:
    """Detection's reasons to call, strongest first.

    A decline (fewer orders, smaller orders, less margin) is stronger than the silence
    while the customer still buys (:attr:`Assessment.declining`: orders shrank and they
    are not yet twice past their rhythm); otherwise the silence leads. Declines are
    ordered by how far they fell.
    """
    p = a.profile
    silence = _silence(a, t)
    declines: list[Reason] = []
    if p.count_ratio is not None and p.count_ratio <= DECLINE_THRESHOLD:
        times = 1 / p.count_ratio if p.count_ratio > 0 else 0.0
        declines.append(
            Reason(
                t.gettext("Lately orders come {times}× less often than before.").format(
                    times=f"{times:.1f}"
                ),
                t.gettext("ordering {times}× less often").format(times=f"{times:.1f}"),
                1 - p.count_ratio,
            )
        )
    if p.aov_ratio is not None and p.aov_ratio <= DECLINE_THRESHOLD:
        drop = f"{100 * (1 - p.aov_ratio):.0f}"
        declines.append(
            Reason(
                t.gettext(
                    "Their last 3 orders were {percent}% smaller than the ones before."
                ).format(percent=drop),
                t.gettext("orders {percent}% smaller").format(percent=drop),
                1 - p.aov_ratio,
            )
        )
    if p.margin_ratio is not None and p.margin_ratio <= DECLINE_THRESHOLD:
        drop = f"{100 * (1 - p.margin_ratio):.0f}"
        declines.append(
            Reason(
                t.gettext("Margin contributed is down {percent}%.").format(percent=drop),
                t.gettext("margin down {percent}%").format(percent=drop),
                1 - p.margin_ratio,
            )
        )
    declines.sort(key=lambda r: -r.strength)
    around: list[Reason] = []
    if p.last_activity_at and p.last_order_at and p.last_activity_at > p.last_order_at:
        seen = a.days_silent - (p.last_activity_at - p.last_order_at).total_seconds() / 86400
        around.append(
            Reason(
                t.gettext("Still around: last seen {days} ago.").format(
                    days=days(t, max(seen, 0.0))
                ),
                t.gettext("still visiting"),
                0.0,
            )
        )
    shape = _shape(a, t)
    if declines and a.declining:
        return [*declines, silence, *shape, *around]
    return [silence, *declines, *shape, *around]


def _shape(a: Assessment, t: Texts) -> list[Reason]:
    """What of the history's shape raised the lapse score (:attr:`Assessment.drivers`, most
    first), in the rep's language; a decline said above is not said twice."""
    found = []
    for d in driver_lines(a.profile, a.drivers, a.inputs):
        counts = {name: days(t, value) for name, value in d.days}
        # The message ids are detect.driver_lines' English sentences (in the catalogues).
        found.append(Reason(t.gettext(d.line).format(**counts), t.gettext(d.short), 0.0))
    return found


def _silence(a: Assessment, t: Texts) -> Reason:
    p = a.profile
    silent, gap = days(t, a.days_silent), days(t, a.expected_gap_days)
    ratio = f"{a.lapse_ratio:.1f}"
    if p.order_count == 0:
        return Reason(
            t.gettext("Has never ordered; last seen {days} ago.").format(days=silent),
            t.gettext("never ordered"),
            a.lapse_ratio,
        )
    if p.order_count == 1:
        return Reason(
            t.gettext(
                "Ordered once, {days} ago; customers like them usually reorder within {gap}."
            ).format(days=silent, gap=gap),
            t.gettext("ordered once, {days} ago").format(days=silent),
            a.lapse_ratio,
        )
    if a.lapse_ratio < 1:  # still on rhythm: no "silence" to undercut the real reason
        return Reason(
            t.gettext("Usually orders every {gap}; last order {days} ago, on rhythm.").format(
                gap=gap, days=silent
            ),
            t.gettext("last order {days} ago").format(days=silent),
            a.lapse_ratio,
        )
    if p.order_count == 2 and p.typical_gap_days is not None:
        line = t.gettext(
            "Ordered twice, {apart} apart; silent for {days} ({ratio}× the {gap} expected)."
        ).format(apart=days(t, p.typical_gap_days), days=silent, ratio=ratio, gap=gap)
    else:
        line = t.gettext(
            "Usually orders every {gap}; silent for {days} ({ratio}× their rhythm)."
        ).format(gap=gap, days=silent, ratio=ratio)
    short = t.gettext("silent {days}, usually every {gap}").format(days=silent, gap=gap)
    return Reason(line, short, a.lapse_ratio)


def value_phrase(at_risk: float, per_year: float, currency: str, t: Texts) -> str:
    """The value at risk as one phrase: ``€1,200 of their €1,500 a year``; when the two are
    the same in whole units ``€2,607 a year, all they spend``, and "nearly all" from 95%."""
    risk = t.money(at_risk, currency)
    whole = t.money(per_year, currency)
    if per_year <= 0:
        return t.gettext("{risk} a year").format(risk=risk)
    if risk == whole:
        return t.gettext("{risk} a year, all they spend").format(risk=risk)
    if at_risk >= NEARLY_ALL * per_year:  # "€14,597 of their €14,610" says nothing more
        return t.gettext("{risk} a year, nearly all they spend").format(risk=risk)
    return t.gettext("{risk} of their {total} a year").format(risk=risk, total=whole)


# A rep's "call again" is stored as facts (the day asked for, their notes), worded on each card
# in the reader's language: ``call-again:2026-12-05 free delivery``. Rows written before
# read "You set this call on 08 Dec. Notes: free delivery" (English, the UTC day).
CALL_AGAIN_MARK = "call-again:"
_OLD_CALL_AGAIN = re.compile(
    r"^You set this call on \d{1,2} \w{3}\.(?: Notes: (?P<note>.*))?$", re.DOTALL
)


def call_again_reason(asked: date, note: str | None) -> str:
    """What a call again stores as its reason: the day the rep asked for and their notes."""
    return f"{CALL_AGAIN_MARK}{asked.isoformat()}" + (f" {note}" if note else "")


def call_again_facts(reason: str) -> tuple[date | None, str | None]:
    """The day asked for (None when not stored) and the notes of a call again's reason."""
    if reason.startswith(CALL_AGAIN_MARK):
        day, _, note = reason[len(CALL_AGAIN_MARK) :].partition(" ")
        try:
            return date.fromisoformat(day), note.strip() or None
        except ValueError:
            return None, reason
    old = _OLD_CALL_AGAIN.match(reason)
    if old is not None:
        return None, (old.group("note") or "").strip() or None
    return None, reason.strip() or None


def call_again(call: OpenCall, zone: ZoneInfo, t: Texts, today: date | None = None) -> Reason:
    """A call again the rep set, on the card of ``today`` (the day it is due, when None):
    the day they asked for when it was a day off, since when it is due when it is late,
    when they set it (their own date) and their notes."""
    asked, note = call_again_facts(call.reason)
    due = call.due_at.astimezone(zone).date()
    today = max(today or due, due)
    asked = asked or due

    def day(d: date) -> str:
        return t.date(d, t.gettext("EEE dd MMM"))

    if due == today and asked == due:
        line, short = t.gettext("You asked to call again today."), t.gettext("call again today")
    elif due == today:
        line = t.gettext("You asked to call again on {asked}, a day off, so today.")
        short = t.gettext("call again today")
    elif asked == due:
        line = t.gettext("You asked to call again on {asked}; due since then.")
        short = t.gettext("call again, due since {due}")
    else:
        line = t.gettext("You asked to call again on {asked}, a day off; due since {due}.")
        short = t.gettext("call again, due since {due}")
    words = [
        line.format(asked=day(asked), due=day(due)),
        t.gettext("You set this call on {day}.").format(
            day=t.date(call.created_at.astimezone(zone), t.gettext("dd MMM"))
        ),
    ]
    if note:
        words.append(t.gettext("Notes: {note}").format(note=note))
    return Reason(" ".join(words), short.format(due=day(due)), 100.0)


_DIALLED = re.compile(r"[^0-9]")


def tel_href(phone: str | None) -> str | None:
    """The ``tel:`` address of a phone number as people write it (``+49 30 123-45``
    → ``tel:+493012345``); None when it has no digits to dial."""
    if not phone:
        return None
    digits = _DIALLED.sub("", phone)
    if not digits:
        return None
    plus = "+" if phone.strip().startswith("+") or phone.strip().startswith("00") else ""
    if plus and phone.strip().startswith("00"):
        digits = digits[2:]
    return f"tel:{plus}{digits}" if digits else None


def reasons_now(
    candidate: Candidate, zone: ZoneInfo, t: Texts, today: date | None = None
) -> list[Reason]:
    """Why this customer is on the list: what put them on it on purpose (a call asked for,
    a reply waiting) first, then detection's signals, strongest first. ``today``: the list's
    day (a call again due before it is said to be due since then)."""
    found = []
    for call in candidate.calls:
        if call.campaign_id is None:
            found.append(call_again(call, zone, t, today))
        else:
            found.append(
                Reason(
                    t.gettext("{reason} (campaign {campaign}).").format(
                        reason=call.reason, campaign=call.campaign_id
                    ),
                    t.gettext("campaign call: {campaign}").format(campaign=call.campaign_id),
                    100.0,
                )
            )
    if candidate.reply is not None:
        day = t.date(candidate.reply.received_at.astimezone(zone), t.gettext("dd MMM"))
        found.append(
            Reason(
                t.gettext("Replied on {day}: “{subject}”.").format(
                    day=day, subject=candidate.reply.subject
                ),
                t.gettext("replied {day}").format(day=day),
                100.0,
            )
        )
    if candidate.assessment is not None:
        found.extend(signals(candidate.assessment, t))
    return found
