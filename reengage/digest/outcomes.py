"""After the call: record what the rep learned, act on it, and learn from all calls.

Saving an outcome closes the customer's open calls and answers their waiting replies, then
acts on the next step the rep chose, all in one transaction:

- **do not contact** — the customer is marked so; every running enrollment ends; they
  never appear on a digest again (until someone changes their status);
- **follow-up** — running enrollments end and the customer enters the follow-up campaign
  ("here is what we changed");
- **call again on D** — a call is put on the rep's list for D (for the next working day
  when D is a day off: a Sunday's call is on Monday's list);
- **rep's offer** / **nothing** — the rep has taken over: enrollments in campaigns whose
  ``exit_on`` lists ``call_outcome`` end.

A customer who is already do-not-contact (marked earlier, or by an outcome saved at the same
moment: the store reads the mark under a lock on the customer's row) gets no follow-up and
no call again whatever the rep chose, and the rep is told so.

A call nobody answered changes no enrollment (unless the rep chose do-not-contact or the
follow-up). A digest link records one outcome: submitting its form twice records it once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from reengage.campaigns import Campaign, ExitReason
from reengage.digest.calllist import assess_one, day_start, rep_zone
from reengage.digest.reasons import call_again_reason
from reengage.errors import ReengageError
from reengage.i18n import Texts, texts
from reengage.models import (
    CallOutcome,
    CallTaskStatus,
    CauseScope,
    NextStep,
    Reached,
    StopReason,
    WorthIt,
)
from reengage.store import Store
from reengage.store.enrollments import NewEnrollment
from reengage.store.outcomes import OutcomeActs
from reengage.workdays import WorkingDays

NOTE_LIMIT = 4000


class OutcomeError(ReengageError):
    """An outcome that cannot be saved as given (the message says which field and why;
    ``problems``: field → what is wrong, for a form or a command to name its own inputs)."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


@dataclass(frozen=True)
class CallReport:
    """What the rep learned on one call, as entered on the form or the terminal."""

    reached: Reached
    worth: WorthIt
    next_step: NextStep
    contact_name: str | None = None
    reason: StopReason | None = None
    reason_text: str | None = None
    scope: CauseScope | None = None
    win_back: str | None = None
    call_again_on: date | None = None

    def problems(self, today: date) -> dict[str, str]:
        """Field → what is wrong with it; empty when the outcome can be saved."""
        found: dict[str, str] = {}
        if self.next_step is NextStep.CALL_AGAIN:
            if self.call_again_on is None:
                found["call_again_on"] = "choose the day to call again"
            elif self.call_again_on <= today:
                found["call_again_on"] = "the day to call again must be after today"
            elif self.call_again_on > today + timedelta(days=366):
                found["call_again_on"] = "the day to call again must be within a year"
        if self.reached is not Reached.NOBODY and self.reason is None:
            found["reason"] = "choose the main reason they stopped (or 'other')"
        for name in ("reason_text", "win_back"):
            text = getattr(self, name)
            if text and len(text) > NOTE_LIMIT:
                found[name] = f"keep it under {NOTE_LIMIT} characters"
        if self.contact_name and len(self.contact_name) > 200:
            found["contact_name"] = "keep the name under 200 characters"
        return found


@dataclass
class Acted:
    """What saving the outcome did, for the page or the terminal to say."""

    recorded: bool  # False: this link's outcome was already recorded
    outcome: CallOutcome | None = None
    ended: int = 0
    enrolled_in: str | None = None
    call_again_on: date | None = None  # the working day the call is on the list
    asked_for: date | None = None  # the day the rep chose, when that was a day off
    do_not_contact: bool = False
    # The customer was already do-not-contact: the follow-up or call again chosen was not set.
    refused: NextStep | None = None

    def summary(self, t: Texts | None = None, zone: ZoneInfo | None = None) -> list[str]:
        """Plain sentences: what happened because of this call, in the rep's words ``t``
        (English without) and times in the rep's ``zone`` (UTC without)."""
        t = t or texts(None)
        if not self.recorded:
            return [already_recorded(self.outcome, t, zone)]
        return [t.gettext("The call is recorded."), *self.lines(t)]

    def lines(self, t: Texts) -> list[str]:
        """What saving the call did beyond recording it, in the reader's words."""
        _ = t.gettext
        lines = []
        if self.do_not_contact:
            lines.append(_("They are marked do-not-contact: no more mail, no more calls."))
        if self.refused is NextStep.FOLLOW_UP:
            lines.append(_("They are do-not-contact: no follow-up."))
        elif self.refused is NextStep.CALL_AGAIN:
            lines.append(_("They are do-not-contact: no call again."))
        if self.ended:
            lines.append(
                t.ngettext(
                    "%(n)d running email sequence(s) stopped.",
                    "%(n)d running email sequence(s) stopped.",
                    self.ended,
                )
                % {"n": self.ended}
            )
        if self.enrolled_in:
            lines.append(
                _("They will get the follow-up campaign %(name)s.") % {"name": self.enrolled_in}
            )
        if self.call_again_on:
            lines.append(
                _("They are on your list again on %(day)s.")
                % {"day": t.date(self.call_again_on, "full")}
            )
            if self.asked_for:
                lines.append(
                    _("(%(day)s is not a working day.)") % {"day": t.date(self.asked_for, "full")}
                )
        return lines


def already_recorded(outcome: CallOutcome | None, t: Texts, zone: ZoneInfo | None) -> str:
    """ "This call was already recorded (when)": in the rep's words ``t``, the time the call
    was recorded in the rep's ``zone`` as their locale writes it ("UTC" named when the rep's
    zone is UTC or not known, so nobody reads a UTC time as their own)."""
    zone = zone or ZoneInfo("UTC")
    when = ""
    if outcome is not None:
        when = t.moment(outcome.called_at.astimezone(zone))
        if zone.key == "UTC":
            when += " UTC"
    note = t.gettext("This call was already recorded (%(when)s); nothing was changed.")
    return note % {"when": when}


@dataclass(frozen=True)
class CallContext:
    """Who recorded the call, for which customer, and the campaigns that decide exits."""

    customer_id: int
    rep_external_id: str | None
    campaigns: dict[str, Campaign]
    followup_campaign: str
    source: str  # "web" or "cli"
    dedupe_key: str | None = None
    days: WorkingDays = field(default_factory=WorkingDays)  # a call-again lands on one


def record_outcome(
    store: Store, ctx: CallContext, outcome: CallReport, now: datetime, *, today: date
) -> Acted:
    """Save the outcome and act on it in one transaction (see the module docstring)."""
    check(ctx, outcome, today)
    value = value_at_risk(store, ctx.customer_id, now)
    acts = plan_acts(store, ctx, outcome, now)
    saved = store.calls.save_outcome(
        {
            "customer_id": ctx.customer_id,
            "rep_external_id": ctx.rep_external_id,
            "called_at": now,
            **outcome_values(outcome),
            "value_at_risk": value,
            "source": ctx.source,
            "dedupe_key": ctx.dedupe_key,
            "created_at": now,
        },
        acts,
        now,
    )
    if not saved.new:
        return Acted(False, saved.outcome)
    if saved.refused_do_not_contact:  # marked so by someone else: nothing was started
        acts = replace(acts, enroll=None, call_again=None)
    asked = outcome.call_again_on
    again = ctx.days.next_working_day(asked) if acts.call_again and asked is not None else None
    return Acted(
        recorded=True,
        outcome=saved.outcome,
        ended=saved.ended,
        do_not_contact=acts.do_not_contact,
        refused=outcome.next_step if saved.refused_do_not_contact else None,
        enrolled_in=acts.enroll.campaign_id if acts.enroll else None,
        call_again_on=again,
        asked_for=asked if again is not None and again != asked else None,
    )


def check(ctx: CallContext, outcome: CallReport, today: date) -> None:
    """Raise :class:`OutcomeError` naming each field that cannot be saved as given."""
    problems = outcome.problems(today)
    if outcome.next_step is NextStep.FOLLOW_UP and ctx.followup_campaign not in ctx.campaigns:
        problems["next_step"] = (
            f"the follow-up campaign {ctx.followup_campaign!r} is not loaded; set "
            "REENGAGE_FOLLOWUP_CAMPAIGN to one of: " + ", ".join(sorted(ctx.campaigns))
        )
    if problems:
        raise OutcomeError(problems)


def outcome_values(outcome: CallReport) -> dict[str, Any]:
    """The outcome's own columns, cleaned and clipped as they are stored."""
    return {
        "reached": outcome.reached.value,
        "contact_name": _text(outcome.contact_name, 200),
        "reason": outcome.reason.value if outcome.reason else None,
        "reason_text": _text(outcome.reason_text, NOTE_LIMIT),
        "scope": outcome.scope.value if outcome.scope else None,
        "win_back": _text(outcome.win_back, NOTE_LIMIT),
        "worth": outcome.worth.value,
        "next_step": outcome.next_step.value,
        "call_again_on": outcome.call_again_on,
    }


def plan_acts(store: Store, ctx: CallContext, outcome: CallReport, now: datetime) -> OutcomeActs:
    """What saving ``outcome`` does besides storing it (see the module docstring)."""
    followup = ctx.campaigns.get(ctx.followup_campaign)
    rep = store.calls.reps([ctx.rep_external_id]) if ctx.rep_external_id else []
    zone = rep_zone(rep[0]) if rep else None
    step, reached = outcome.next_step, outcome.reached is not Reached.NOBODY
    acts = OutcomeActs(
        customer_id=ctx.customer_id,
        close_calls_as=(
            CallTaskStatus.CANCELLED if step is NextStep.DO_NOT_CONTACT else CallTaskStatus.DONE
        ),
        answer_replies=reached,
        do_not_contact=step is NextStep.DO_NOT_CONTACT,
    )
    if step is NextStep.DO_NOT_CONTACT:
        acts = replace(acts, end_reason="do_not_contact")
    elif step is NextStep.FOLLOW_UP and followup is not None:
        first = followup.steps[0]
        acts = replace(
            acts,
            end_reason="call_outcome",
            enroll=NewEnrollment(ctx.customer_id, followup.id, False, first.key, now + first.after),
        )
    elif reached:
        exiting = [c.id for c in ctx.campaigns.values() if ExitReason.CALL_OUTCOME in c.exit_on]
        acts = replace(acts, end_reason="call_outcome", end_campaigns=tuple(exiting))
    if step is NextStep.CALL_AGAIN and outcome.call_again_on is not None:
        # The rep's own date: a day off there puts the call on their next working day.
        again = ctx.days.next_working_day(outcome.call_again_on)
        due = day_start(again, zone or ZoneInfo("UTC"))
        note = _text(outcome.win_back or outcome.reason_text, 200)
        reason = call_again_reason(outcome.call_again_on, note)  # worded on each card
        acts = replace(acts, call_again=(reason, due))
    return acts


def value_at_risk(store: Store, customer_id: int, now: datetime) -> float | None:
    """A year's value of the customer's habit as it stands now (kept with the outcome)."""
    found = assess_one(store, customer_id, now)
    return None if found is None else round(found.value_per_year, 2)


def _text(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    cleaned = value.replace("\x00", "").strip()
    return cleaned[:limit] or None


# -- lessons ---------------------------------------------------------------------------------


@dataclass
class CauseRow:
    """One stop reason across all calls."""

    reason: str
    calls: int = 0
    systemic: int = 0
    specific: int = 0
    unsure: int = 0  # the rep answered "Not sure"
    unanswered: int = 0  # the rep left "specific or systemic?" out: not the same as unsure
    value_lost: float = 0.0  # a year's value of the customers who gave this reason, each once
    notes: list[str] = field(default_factory=list)

    @property
    def mostly_systemic(self) -> bool:
        """More calls called it systemic than specific."""
        return self.systemic > self.specific


@dataclass
class CausesReport:
    """Why customers stopped, systemic causes first: the ones the business must fix."""

    since: datetime | None
    calls: int
    reached: int
    rows: list[CauseRow]
    next_steps: Counter[str]
    # A year's value of everyone who gave a reason, each customer once whatever they said:
    # not the rows' sum, which counts a customer who gave two reasons twice.
    value_lost: float


def causes(
    store: Store, since: datetime | None, name_of: Callable[[int], str] | None = None
) -> CausesReport:
    """Reasons, specific-vs-systemic counts, value lost per cause and verbatim notes."""
    outcomes = store.calls.outcomes_since(since)  # oldest first
    rows: dict[str, CauseRow] = defaultdict(lambda: CauseRow(""))
    # A customer called twice is one customer at risk: their value counts once per reason
    # (and once in the total), as it stood at their latest call.
    at_risk: dict[str, dict[int, float]] = defaultdict(dict)
    everyone: dict[int, float] = {}
    steps: Counter[str] = Counter()
    reached = 0
    for o in outcomes:
        steps[o.next_step] += 1
        if o.reached == Reached.NOBODY.value or not o.reason:
            continue
        reached += 1
        row = rows[o.reason]
        row.reason = o.reason
        row.calls += 1
        if o.scope in {s.value for s in CauseScope}:
            setattr(row, str(o.scope), getattr(row, str(o.scope)) + 1)
        else:  # not answered (stored as NULL since the first release): never counted unsure
            row.unanswered += 1
        at_risk[o.reason][o.customer_id] = everyone[o.customer_id] = o.value_at_risk or 0.0
        if o.reason_text:
            who = name_of(o.customer_id) if name_of else f"customer {o.customer_id}"
            row.notes.append(f"{o.called_at:%Y-%m-%d} {who}: “{o.reason_text}”")
    for reason, row in rows.items():
        row.value_lost = sum(at_risk[reason].values())
    ordered = sorted(
        rows.values(), key=lambda r: (not r.mostly_systemic, -r.systemic, -r.value_lost, r.reason)
    )
    return CausesReport(since, len(outcomes), reached, ordered, steps, sum(everyone.values()))
