"""Confidence intervals for reactivation rates and their difference, and the verdict.

A campaign's lift is the difference between two independent proportions: the share of
treated customers who came back minus the share of the holdout who did. Holdout groups are
small (10% of a campaign) and reactivation is rare, so the usual Wald interval
``d ± z·se`` is wrong exactly where it matters: it collapses to zero width when a group has
no reactivations and overshoots 0 and 1. We use the interval Newcombe recommends instead
(method 10 in Newcombe 1998, "Interval estimation for the difference between independent
proportions", Statistics in Medicine 17:873-890): it is built from the Wilson score
interval of each proportion, stays within [-1, 1], and keeps close to its nominal 95%
coverage even on tiny counts.

The intervals themselves are :mod:`reengage.proportions` (the per-segment uplift uses them
too); this module turns them into the verdict. Pure functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from reengage.proportions import MIN_CAME_BACK, Z95, Interval, newcombe, points, wilson

__all__ = [
    "MIN_PER_GROUP",
    "MIN_REACTIVATIONS",
    "Z95",
    "Interval",
    "Lift",
    "VerdictKind",
    "lift",
    "newcombe",
    "points",
    "wilson",
]

# A verdict needs at least this many customers in each group and this many reactivations
# in both together. The interval itself is valid on fewer (that is why it is Newcombe's),
# but it is then so wide, and moves so much with each new customer, that a headline drawn
# from it would change from day to day. Below this the numbers are shown, the verdict waits.
MIN_PER_GROUP = 30
MIN_REACTIVATIONS = MIN_CAME_BACK


class VerdictKind(StrEnum):
    """What the numbers allow us to say about a campaign."""

    NO_HOLDOUT = "no_holdout"  # nobody was held out: lift cannot be measured
    NOT_ENOUGH_DATA = "not_enough_data"
    NO_MEASURABLE_LIFT = "no_measurable_lift"  # the interval contains 0
    LIFT = "lift"  # the whole interval is above 0
    NEGATIVE = "negative"  # the whole interval is below 0: the campaign may be hurting


@dataclass(frozen=True)
class Lift:
    """Treatment against holdout: rates, their difference, its interval and the verdict."""

    treated: int
    treated_reactivated: int
    held_out: int
    held_out_reactivated: int
    difference: float | None  # treatment rate − holdout rate, a proportion
    interval: Interval | None
    kind: VerdictKind
    verdict: str

    @property
    def treated_rate(self) -> float | None:
        """Share of treated customers who came back."""
        return self.treated_reactivated / self.treated if self.treated else None

    @property
    def held_out_rate(self) -> float | None:
        """Share of held-out customers who came back anyway."""
        return self.held_out_reactivated / self.held_out if self.held_out else None


def lift(treated: int, treated_reactivated: int, held_out: int, held_out_reactivated: int) -> Lift:
    """The measured lift of a campaign and a plain-words verdict on it.

    Rule: no holdout → cannot be measured; fewer than :data:`MIN_PER_GROUP` customers in
    either group, or fewer than :data:`MIN_REACTIVATIONS` reactivations in both together →
    not enough data yet; otherwise the 95% interval decides (contains 0 → no measurable
    lift; above 0 → lift; below 0 → fewer reactivations than the holdout).
    """
    counts = (treated, treated_reactivated, held_out, held_out_reactivated)
    difference = interval = None
    if treated > 0 and held_out > 0:
        difference = treated_reactivated / treated - held_out_reactivated / held_out
        interval = newcombe(treated_reactivated, treated, held_out_reactivated, held_out)
    if held_out == 0:
        kind, text = VerdictKind.NO_HOLDOUT, "no holdout group: lift cannot be measured"
    elif min(treated, held_out) < MIN_PER_GROUP or (
        treated_reactivated + held_out_reactivated < MIN_REACTIVATIONS
    ):
        kind = VerdictKind.NOT_ENOUGH_DATA
        text = (
            f"not enough data yet: {treated} treated and {held_out} held out, "
            f"{treated_reactivated + held_out_reactivated} reactivated (a verdict needs "
            f"{MIN_PER_GROUP} in each group and {MIN_REACTIVATIONS} reactivations)"
        )
    else:
        assert difference is not None and interval is not None
        ci = f"95% CI {_range(interval)}"
        if interval.low > 0:
            kind, text = VerdictKind.LIFT, f"lift of {points(difference)} points, {ci}"
        elif interval.high < 0:
            kind = VerdictKind.NEGATIVE
            text = f"fewer reactivations than the holdout: {points(difference)} points, {ci}"
        else:
            kind = VerdictKind.NO_MEASURABLE_LIFT
            text = f"no measurable lift ({_signed(difference)} points, {ci})"
    return Lift(*counts, difference, interval, kind, text)


def _signed(proportion: float) -> str:
    text = points(proportion)
    return text if text.startswith("−") or text == "0.0" else f"+{text}"


def _range(interval: Interval) -> str:
    low, high = points(interval.low), points(interval.high)
    # "1.2–7.0" reads well; "−2.1–5.3" does not, so a negative end gets a word.
    return f"{low} to {high}" if low.startswith("−") else f"{low}–{high}"
