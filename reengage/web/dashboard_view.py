"""What the dashboard says about a campaign, in the reader's language: the lift's verdict
first, the point estimate only beside a verdict that allows one, and the two groups apart.

``reengage.stats`` gives the numbers and an English verdict for the terminal; the page
words its own verdict from the same :class:`~reengage.stats.intervals.Lift` so that
it can be translated and so that the number never stands alone. While there is not enough
data (or no holdout) there is no estimate at all: a "10.3 points" beside "not enough data"
reads as a result.

Two counts of customers who came back are on the page and they differ on purpose:

- *came back* (the lift): bought within the horizon of *entering* the campaign, counted
  alike in both groups, so the groups can be compared;
- *reactivated* (the funnel): a treated customer with a purchase credited to the campaign,
  as ``reengage stats`` counts it: to a mail (within the horizon after it), or, bought
  after entering but before any mail went, to "(before the first mail)". The page says
  how many of them bought before the first mail, so that no one reads them as won by one.

:func:`definitions` names and explains both on the page.
"""

from __future__ import annotations

from dataclasses import dataclass

from reengage.i18n import Texts
from reengage.stats import CampaignResult
from reengage.stats.intervals import MIN_PER_GROUP, MIN_REACTIVATIONS, Lift, VerdictKind, points
from reengage.stats.results import BEFORE_FIRST_MAIL

#: Verdicts that say something about the lift: only beside these is an estimate shown.
DECIDED = frozenset({VerdictKind.LIFT, VerdictKind.NO_MEASURABLE_LIFT, VerdictKind.NEGATIVE})


@dataclass(frozen=True)
class LiftView:
    """The lift as the page shows it: ``verdict`` large, ``estimate`` small below it (or
    None when no verdict allows one), ``why`` saying what is missing for a verdict."""

    kind: str
    verdict: str
    estimate: str | None
    why: str | None


def signed_points(proportion: float) -> str:
    """Percentage points with a sign: ``+10.3``, ``−2.0``, ``0.0``."""
    text = points(proportion)
    return text if text.startswith("−") or text == "0.0" else f"+{text}"


def lift_view(lift: Lift, t: Texts) -> LiftView:
    """The verdict in ``t``'s words, and the estimate with its interval only when decided."""
    _ = t.gettext
    kind = lift.kind
    if kind is VerdictKind.NO_HOLDOUT:
        return LiftView(kind.value, _("No holdout group: lift cannot be measured"), None, None)
    if kind is VerdictKind.NOT_ENOUGH_DATA:
        came_back = lift.treated_reactivated + lift.held_out_reactivated
        why = _(
            "{treated} treated and {held} held out, {came_back} came back; a verdict needs "
            "{per_group} in each group and {needed} who came back."
        ).format(
            treated=lift.treated,
            held=lift.held_out,
            came_back=came_back,
            per_group=MIN_PER_GROUP,
            needed=MIN_REACTIVATIONS,
        )
        return LiftView(kind.value, _("Not enough data yet"), None, why)
    assert lift.difference is not None and lift.interval is not None
    verdict = {
        VerdictKind.LIFT: _("Lift: more came back than in the holdout"),
        VerdictKind.NO_MEASURABLE_LIFT: _("No measurable lift yet"),
        VerdictKind.NEGATIVE: _("Fewer came back than in the holdout"),
    }[kind]
    estimate = _("estimated {difference} points (95% interval {low} to {high})").format(
        difference=signed_points(lift.difference),
        low=points(lift.interval.low),
        high=points(lift.interval.high),
    )
    return LiftView(kind.value, verdict, estimate, None)


def groups(campaign: CampaignResult, t: Texts, currency: str, horizon_days: int) -> list[str]:
    """Who entered, as two groups apart, and what each spent: one sentence per line.
    A campaign without a holdout says so, and nothing about a holdout's spending; one
    whose treated went on to enter another campaign says how many (the lift then is of
    the campaigns together)."""
    treated = campaign.enrolled - campaign.held_out
    spent = t.money(campaign.funnel.revenue, currency)
    reactivated = campaign.funnel.reactivated
    lines = [
        t.ngettext(
            "{n} customer treated (sent the mails)",
            "{n} customers treated (sent the mails)",
            treated,
        ).format(n=t.number(treated))
    ]
    if campaign.held_out:
        lines.append(
            t.ngettext(
                "{n} customer held out (never contacted, for comparison)",
                "{n} customers held out (never contacted, for comparison)",
                campaign.held_out,
            ).format(n=t.number(campaign.held_out))
        )
    else:
        lines.append(t.gettext("No holdout: every customer who entered was sent the mails"))
    reactivated_line = t.ngettext(
        "{n} treated customer reactivated, spending {money}",
        "{n} treated customers reactivated, spending {money}",
        reactivated,
    ).format(n=t.number(reactivated), money=spent)
    early = next((s.funnel for s in campaign.steps if s.key == BEFORE_FIRST_MAIL), None)
    if early is not None and early.reactivated:
        # On the same line, so that the list keeps one line per group and fact.
        reactivated_line += " " + t.ngettext(
            "(of them, {n} bought before the first mail went, spending {money})",
            "(of them, {n} bought before the first mail went, spending {money})",
            early.reactivated,
        ).format(n=t.number(early.reactivated), money=t.money(early.revenue, currency))
    lines.append(reactivated_line)
    if campaign.also_entered:
        lines.append(
            t.ngettext(
                "{n} treated customer also entered another campaign within {days} days; "
                "their returns count for each, so this lift is of the campaigns together",
                "{n} treated customers also entered another campaign within {days} days; "
                "their returns count for each, so this lift is of the campaigns together",
                campaign.also_entered,
            ).format(n=t.number(campaign.also_entered), days=horizon_days)
        )
    if campaign.held_out:
        lines.append(
            t.gettext("The holdout spent {money} in the same window without any mail").format(
                money=t.money(campaign.held_out_revenue, currency)
            )
        )
    return lines


def definitions(t: Texts, horizon_days: int) -> list[tuple[str, str]]:
    """The two counts of customers who came back, named and explained."""
    _ = t.gettext
    return [
        (
            _("Came back"),
            _(
                "bought within {days} days of entering the campaign, counted alike in the "
                "treated group and the holdout. The lift compares these."
            ).format(days=horizon_days),
        ),
        (
            _("Reactivated"),
            _(
                "a treated customer with a purchase credited to the campaign: within {days} "
                "days after a mail (credited to that mail), or after entering but before the "
                "first mail went. The funnel and its steps count these, as reengage stats does."
            ).format(days=horizon_days),
        ),
    ]
