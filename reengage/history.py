"""A customer's history folded into a few running numbers, so detection never rereads it.

Pure and order-independent: folding activities in any order and in any batches gives the
same :class:`Summary`. Besides counts, sums and extremes, a summary keeps the customer's
last :data:`RING` orders (time, amount, margin); from those come the robust typical gap
and the decline ratios, so a late or out-of-order activity costs O(RING), never a rescan.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

RING = 16  # orders remembered per customer: enough for a median gap and two windows
SAME_OCCASION_S = 12 * 3600  # orders this close together are one buying occasion
DAY_S = 86400.0
RECENT_OCCASIONS = 3  # the recent window: the customer's last three buying occasions
MIN_PRIOR_OCCASIONS = 3  # and at least three before them to compare against


class Order(NamedTuple):
    """One remembered order: epoch seconds (UTC), amount, margin."""

    at: float
    amount: float
    margin: float


class Event(NamedTuple):
    """What folding needs to know about an activity."""

    kind: str
    occurred_at: datetime
    amount: float | None
    margin: float | None


@dataclass
class Summary:
    """Running stats of one customer. Field names match ``customer_stats`` columns."""

    activity_count: int = 0
    order_count: int = 0
    first_activity_at: datetime | None = None
    last_activity_at: datetime | None = None
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    total_value: float = 0.0
    total_margin: float = 0.0
    recent_orders: list[Order] = field(default_factory=list)  # oldest first, at most RING

    def fold(self, events: Iterable[Event]) -> Summary:
        """Add activities (any order); returns self for chaining."""
        batch = sorted(events, key=lambda e: e.occurred_at)
        if not batch:
            return self
        self.activity_count += len(batch)
        self.first_activity_at = _min(self.first_activity_at, batch[0].occurred_at)
        self.last_activity_at = _max(self.last_activity_at, batch[-1].occurred_at)
        self.total_value += sum(e.amount or 0.0 for e in batch)
        self.total_margin += sum(e.margin or 0.0 for e in batch)
        placed = [e for e in batch if e.kind == "order"]
        if placed:
            self.order_count += len(placed)
            self.first_order_at = _min(self.first_order_at, placed[0].occurred_at)
            self.last_order_at = _max(self.last_order_at, placed[-1].occurred_at)
            orders = [
                Order(e.occurred_at.timestamp(), e.amount or 0.0, e.margin or 0.0) for e in placed
            ]
            # The last RING orders of everything seen: the same whatever the arrival order.
            self.recent_orders = sorted(self.recent_orders + orders)[-RING:]
        return self

    # -- derived, recomputed from the fields above ----------------------------------------

    def typical_gap_days(self, occasions: list[Order] | None = None) -> float | None:
        """Median days between recent buying occasions; None with fewer than two.

        A median, so one holiday or one busy quarter does not swing it.
        """
        times = [o.at for o in (occasions or self.occasion_totals())]
        if len(times) < 2:
            return None
        gaps = [(b - a) / DAY_S for a, b in itertools.pairwise(times)]
        return max(statistics.median(gaps), 0.5)

    def gap_count(self) -> int:
        """How many gaps the customer's whole order history has (evidence for their rhythm)."""
        return max(self.order_count - 1, 0)

    def occasion_totals(self) -> list[Order]:
        """Remembered orders merged per buying occasion (amounts and margins summed)."""
        merged: list[Order] = []
        for order in self.recent_orders:
            if merged and order.at - merged[-1].at <= SAME_OCCASION_S:
                last = merged[-1]
                merged[-1] = Order(last.at, last.amount + order.amount, last.margin + order.margin)
            else:
                merged.append(order)
        return merged

    def declines(self, occasions: list[Order] | None = None) -> Declines:
        """The last few buying occasions against the ones before them.

        Windows are counted in the customer's own occasions (the last three, about three of
        their gaps), so they scale with each rhythm: a weekly buyer's recent window is about
        three weeks, a quarterly buyer's about nine months. ``count_ratio`` compares how
        often they bought (usual gap ÷ recent gap), ``aov_ratio`` the average order value,
        ``margin_ratio`` the margin contributed per unit of time.
        """
        occasions = occasions or self.occasion_totals()
        if len(occasions) < RECENT_OCCASIONS + MIN_PRIOR_OCCASIONS:
            return Declines(None, None, None, None)
        recent, prior = occasions[-RECENT_OCCASIONS:], occasions[:-RECENT_OCCASIONS]
        prior_gaps = [(b.at - a.at) / DAY_S for a, b in itertools.pairwise(prior)]
        usual_gap = max(statistics.median(prior_gaps), 0.5)
        recent_gap = max((recent[-1].at - prior[-1].at) / DAY_S / RECENT_OCCASIONS, 0.5)
        count_ratio = usual_gap / recent_gap
        prior_aov = sum(o.amount for o in prior) / len(prior)
        recent_aov = sum(o.amount for o in recent) / len(recent)
        aov_ratio = recent_aov / prior_aov if prior_aov > 0 else None
        prior_margin = sum(o.margin for o in prior) / len(prior)
        recent_margin = sum(o.margin for o in recent) / len(recent)
        margin_ratio = recent_margin / prior_margin * count_ratio if prior_margin > 0 else None
        return Declines(count_ratio, aov_ratio, margin_ratio, recent_gap * RECENT_OCCASIONS)


class Declines(NamedTuple):
    """Recent ÷ before (1.0 steady, 0.6 = 40% down); None when there is too little history.

    ``window_days`` is how many days the recent window (the last three occasions) spans.
    """

    count_ratio: float | None
    aov_ratio: float | None
    margin_ratio: float | None
    window_days: float | None


def summarize(events: Iterable[Event]) -> Summary:
    """The summary of a whole history (what folding it piecewise must equal)."""
    return Summary().fold(events)


def ring_to_json(ring: list[Order]) -> list[list[float]]:
    """Compact storage form: [[epoch_s, amount, margin], …]."""
    return [[round(o.at, 3), o.amount, o.margin] for o in ring]


def ring_from_json(data: list[list[float]] | None) -> list[Order]:
    """Inverse of :func:`ring_to_json`."""
    return [Order(float(a), float(b), float(c)) for a, b, c in (data or [])]


def from_epoch(seconds: float) -> datetime:
    """Epoch seconds to an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def _min(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a


def _max(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a
