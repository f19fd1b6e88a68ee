"""The outcome form's words and checks: the choices as a rep would say them, reading a posted
form into a :class:`CallReport`, and the lines that repeat a saved outcome back to the rep.

Every English sentence here is a message id: pages show it through the rep's
:class:`reengage.i18n.Texts` (``_()`` in the templates), so a catalogue translates it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import Any, TypeVar

from babel import Locale, UnknownLocaleError
from babel.dates import parse_date

from reengage.digest import CallReport
from reengage.digest.prompts import REASON_WORDS
from reengage.i18n import Texts
from reengage.models import CallOutcome, CauseScope, NextStep, Reached, StopReason, WorthIt

# The choices as a rep would say them; the values are the enums', so nothing else parses.
REACHED_WORDS = {
    Reached.DECISION_MAKER: "The decision maker",
    Reached.SOMEONE_ELSE: "Someone else",
    Reached.NOBODY: "Nobody (no answer, voicemail)",
}
REASON_LABELS = {reason: REASON_WORDS[reason.value].capitalize() for reason in StopReason}
SCOPE_WORDS = {
    CauseScope.SPECIFIC: "Specific to this client",
    CauseScope.SYSTEMIC: "Systemic: other clients are likely hit too",
    CauseScope.UNSURE: "Not sure",
}
WORTH_WORDS = {WorthIt.YES: "Yes", WorthIt.NO: "No", WorthIt.LATER: "Later, not now"}
NEXT_WORDS = {
    NextStep.FOLLOW_UP: "Send the “here is what we changed” follow-up",
    NextStep.CALL_AGAIN: "Call again on",
    NextStep.REP_OFFER: "I make them a win-back offer myself",
    NextStep.DO_NOT_CONTACT: "Do not contact them again (no mail, no calls)",
    NextStep.NOTHING: "Nothing for now",
}
FIELDS = (
    "reached",
    "contact_name",
    "reason",
    "reason_text",
    "scope",
    "win_back",
    "worth",
    "next_step",
    "call_again_on",
)
# The one-tap "No answer": nobody picked up, so nothing was learned that changes their worth
# (they stay worth a call) and nothing happens next beyond the list itself.
NO_ANSWER = {"reached": Reached.NOBODY, "worth": WorthIt.YES, "next_step": NextStep.NOTHING}
E = TypeVar("E", bound=StrEnum)


def parse(
    values: Mapping[str, str], today: date, followup_ok: bool, followup: str, t: Texts
) -> tuple[CallReport | None, dict[str, str]]:
    """The outcome the form describes, or None and field → what to fix, in the rep's words."""
    errors: dict[str, str] = {}
    reached = _choice(Reached, values, "reached", "choose whom you spoke to", errors)
    worth = _choice(WorthIt, values, "worth", "say whether they are worth winning back", errors)
    step = _choice(NextStep, values, "next_step", "choose what happens next", errors)
    reason = _choice(StopReason, values, "reason", None, errors)
    scope = _choice(CauseScope, values, "scope", None, errors)
    again: date | None = None
    if step is NextStep.CALL_AGAIN and values.get("call_again_on"):
        try:
            again = typed_day(values["call_again_on"], t.locale)
        except ValueError:
            errors["call_again_on"] = "enter the day as YYYY-MM-DD"
    if step is NextStep.FOLLOW_UP and not followup_ok:
        errors["next_step"] = t.gettext(
            "the follow-up campaign %(name)s is not running; choose another next step"
        ) % {"name": followup}
    # Stand-ins for missing choices only let the other fields be checked in the same pass;
    # they are chosen so that they add no complaint of their own.
    outcome = CallReport(
        reached=reached or Reached.NOBODY,
        worth=worth or WorthIt.YES,
        next_step=step or NextStep.NOTHING,
        contact_name=values.get("contact_name") or None,
        reason=reason,
        reason_text=values.get("reason_text") or None,
        scope=scope,
        win_back=values.get("win_back") or None,
        call_again_on=again,
    )
    for name, text in outcome.problems(today).items():
        errors.setdefault(name, text)
    said = {name: t.gettext(text) for name, text in errors.items()}
    return (None, said) if errors else (outcome, said)


def typed_day(text: str, locale: str) -> date:
    """The day as sent: YYYY-MM-DD (a date picker's) or as the rep's locale writes it short,
    the form's own hint (``12/18/26``, ``2026/12/18``). ValueError when it is neither."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        pass
    try:
        where = Locale.parse(locale.replace("-", "_"))
        return parse_date(text.strip(), locale=where, format="short")
    except (ValueError, IndexError, UnknownLocaleError) as exc:  # babel's ParseError: a ValueError
        raise ValueError(f"{text!r} is not a day") from exc


def form_values(outcome: CallOutcome) -> dict[str, str]:
    """A saved outcome as the form's values, for correcting it."""
    return {
        name: "" if getattr(outcome, name) is None else str(getattr(outcome, name))
        for name in FIELDS
    }


def saved_lines(outcome: CallOutcome, t: Texts) -> list[tuple[str, str]]:
    """What was saved, as (question, answer) in the rep's words, for the confirmation."""
    _ = t.gettext
    lines = [(_("Whom did you reach?"), _(REACHED_WORDS[Reached(outcome.reached)]))]
    if outcome.contact_name:
        lines.append((_("Their name"), outcome.contact_name))
    if outcome.reason:
        lines.append((_("Main reason"), _(REASON_LABELS[StopReason(outcome.reason)])))
    if outcome.reason_text:
        lines.append((_("In their words"), outcome.reason_text))
    if outcome.scope:
        lines.append((_("Specific or systemic?"), _(SCOPE_WORDS[CauseScope(outcome.scope)])))
    if outcome.win_back:
        lines.append((_("What would win them back?"), outcome.win_back))
    lines.append((_("Worth winning back?"), _(WORTH_WORDS[WorthIt(outcome.worth)])))
    step = _(NEXT_WORDS[NextStep(outcome.next_step)])
    if outcome.call_again_on:
        step = f"{step} {t.date(outcome.call_again_on, 'full')}"
    lines.append((_("What happens next?"), step))
    return lines


def _choice(
    kind: type[E],
    values: Mapping[str, str],
    name: str,
    missing: str | None,
    errors: dict[str, str],
) -> E | None:
    raw = values.get(name, "")
    if not raw:
        if missing:
            errors[name] = missing
        return None
    try:
        return kind(raw)
    except ValueError:
        errors[name] = "choose one of the options"
        return None


def value(raw: Any) -> str:
    """A posted field as text: stripped, line ends as ``\\n``, "" when absent."""
    return raw.replace("\r\n", "\n").strip() if isinstance(raw, str) else ""
