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

Pure functions, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist

Z95 = NormalDist().inv_cdf(0.975)  # 1.959963984540054

# A verdict needs at least this many customers in each group and this many reactivations
# in both together. The interval itself is valid on fewer (that is why it is Newcombe's),
# but it is then so wide, and moves so much with each new customer, that a headline drawn
# from it would change from day to day. Below this the numbers are shown, the verdict waits.
MIN_PER_GROUP = 30
MIN_REACTIVATIONS = 5


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval ``[low, high]`` (proportions, not percent)."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the interval (ends included)."""
        return self.low <= value <= self.high


def wilson(successes: int, n: int, z: float = Z95) -> Interval:
    """Wilson's score interval for ``successes`` out of ``n`` (no continuity correction)."""
    _check(successes, n)
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # Clamp rounding dust: at 0 or n successes one end is exactly 0 or 1.
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> Interval:
    """Newcombe's hybrid score interval for ``x1/n1 − x2/n2`` (method 10, 1998).

    Each end moves from the observed difference by the root of the squared distances from
    each proportion to the relevant end of its own Wilson interval.
    """
    _check(x1, n1)
    _check(x2, n2)
    p1, p2 = x1 / n1, x2 / n2
    w1, w2 = wilson(x1, n1, z), wilson(x2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - w1.low) ** 2 + (w2.high - p2) ** 2)
    high = d + math.sqrt((w1.high - p1) ** 2 + (p2 - w2.low) ** 2)
    return Interval(max(-1.0, low), min(1.0, high))


def _check(successes: int, n: int) -> None:
    if n <= 0:
        raise ValueError(f"a proportion needs at least one trial, got n={n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}, got {successes}")


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


def points(proportion: float) -> str:
    """A proportion as percentage points with one decimal: 0.041 → "4.1", −0.03 → "−3.0"."""
    value = round(proportion * 100, 1)
    if value == 0:
        value = 0.0  # no "−0.0"
    return f"{value:.1f}".replace("-", "−")


def _signed(proportion: float) -> str:
    text = points(proportion)
    return text if text.startswith("−") or text == "0.0" else f"+{text}"


def _range(interval: Interval) -> str:
    low, high = points(interval.low), points(interval.high)
    # "1.2–7.0" reads well; "−2.1–5.3" does not, so a negative end gets a word.
    return f"{low} to {high}" if low.startswith("−") else f"{low}–{high}"
