"""Lapse detection: is this customer silent *relative to their own rhythm*? Pure; takes now.

This first cut judges each customer against their average gap between orders, falling
back to the population's typical gap when they have fewer than two orders.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from reengage.models import CustomerStats
from reengage.timeutil import days_between

DEFAULT_GAP_DAYS = 30.0


@dataclass(frozen=True)
class Rhythm:
    """How a customer usually behaves and how far they are from it now."""

    days_silent: float
    expected_gap_days: float
    lapse_ratio: float
    own_history: bool  # False when the gap is the population's, not their own

    def why(self) -> str:
        """One plain sentence a rep can read."""
        usual = (
            f"Usually orders every {self.expected_gap_days:.0f} days"
            if self.own_history
            else f"Too few orders to know their rhythm; customers typically order every "
            f"{self.expected_gap_days:.0f} days"
        )
        return f"{usual}; silent for {self.days_silent:.0f} days ({self.lapse_ratio:.1f}× that)."


def own_gap(stats: CustomerStats) -> float | None:
    """Average days between a customer's orders, or None with fewer than two orders."""
    if stats.order_count < 2 or stats.first_order_at is None or stats.last_order_at is None:
        return None
    return max(
        days_between(stats.first_order_at, stats.last_order_at) / (stats.order_count - 1), 1.0
    )


def population_gap(all_stats: Iterable[CustomerStats]) -> float:
    """The typical gap across customers with a rhythm of their own (median of their gaps)."""
    gaps = [g for s in all_stats if (g := own_gap(s)) is not None]
    return statistics.median(gaps) if gaps else DEFAULT_GAP_DAYS


def rhythm(stats: CustomerStats, now: datetime, fallback_gap: float) -> Rhythm | None:
    """A customer's rhythm as of ``now``, or None if they never did anything."""
    last = stats.last_activity_at
    if last is None:
        return None
    silent = max(days_between(last, now), 0.0)
    gap = own_gap(stats)
    expected = gap if gap is not None else fallback_gap
    return Rhythm(silent, expected, silent / expected, own_history=gap is not None)
