"""Intervals for proportions and their difference: Wilson's and Newcombe's.

A reactivation rate is a proportion, and a lift or an uplift the difference of two
independent ones (treated against held out). Holdout groups are small and reactivation is
rare, so the usual Wald interval ``d ± z·se`` is wrong exactly where it matters: it
collapses to zero width when a group has no reactivations and overshoots 0 and 1. We use
the interval Newcombe recommends instead (method 10 in Newcombe 1998, "Interval estimation
for the difference between independent proportions", Statistics in Medicine 17:873-890):
it is built from the Wilson score interval of each proportion, stays within [-1, 1], and
keeps close to its nominal 95% coverage even on tiny counts.

Pure functions, no I/O; the campaign lift's verdict is :mod:`reengage.stats.intervals`,
the uplift per segment :mod:`reengage.uplift`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

Z95 = NormalDist().inv_cdf(0.975)  # 1.959963984540054
# A verdict on a difference (a campaign's lift, a segment's uplift) needs at least this many
# who came back in both groups together. With none or almost none, Newcombe's interval is
# still valid but hugs zero ("0 of 365 against 0 of 88: −4.2 to 1.0 points") and would read
# as a finding that contact changes nothing, when nothing has been seen yet.
MIN_CAME_BACK = 5


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


def points(proportion: float) -> str:
    """A proportion as percentage points with one decimal: 0.041 → "4.1", −0.03 → "−3.0"."""
    value = round(proportion * 100, 1)
    if value == 0:
        value = 0.0  # no "−0.0"
    return f"{value:.1f}".replace("-", "−")
