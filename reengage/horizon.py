"""The lapse score's horizon, chosen from the business's own rhythm unless named. Pure.

The lapse score answers "will this customer place no order within the horizon?". The right
horizon depends on the business: a grocery shopper gone a month is lost, a furniture buyer
gone a month is normal. So when nobody names one (``--horizon``), the horizon is
:data:`HORIZON_GAPS` times the median typical gap among *regular* buyers (customers with at
least :data:`REGULAR_ORDERS` orders, so at least two gaps of their own), rounded to whole
weeks and kept within [:data:`MIN_HORIZON_DAYS`, :data:`MAX_HORIZON_DAYS`].

Why three typical gaps: a living habit's gaps are about gamma-distributed (shape 2, as
:func:`reengage.lapse_model.rhythm_prior` assumes), and such a habit orders within three of
its typical (median) gaps 96% of the time (three medians are 2.52 means: 1 - e^-5.03 ·
6.03). "No order within the horizon" then means the habit has most likely ended, not that
the customer is a little late, while the horizon stays short enough to act on. Why regular
buyers: one-time buyers have no gap, and two-order customers' single gap is noise; the
rhythm is the habit of those who have one.
Too few regular buyers to read a rhythm keep :data:`DEFAULT_HORIZON_DAYS`, and say so.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from reengage.i18n import days
from reengage.lapse_model import DEFAULT_HORIZON_DAYS

HORIZON_GAPS = 3.0  # the horizon is this many typical gaps of a regular buyer
REGULAR_ORDERS = 3  # a regular buyer has at least this many orders (two gaps of their own)
MIN_REGULAR_BUYERS = 30  # fewer than this: no rhythm can be read, the default is kept
MIN_HORIZON_DAYS = 14.0  # shorter, a weekend or a late delivery decides "lapsed"
MAX_HORIZON_DAYS = 364.0  # longer than a year, no backtest has a window to check it on


class HorizonSource(StrEnum):
    """Where the horizon in force came from."""

    RHYTHM = "rhythm"  # chosen from the customers' median gap
    DEFAULT = "default"  # too few regular buyers: the fixed default
    OPERATOR = "operator"  # named with --horizon


@dataclass(frozen=True, slots=True)
class HorizonChoice:
    """A horizon and why it is the one: what ``score``, ``--backtest`` and ``doctor`` show."""

    days: float
    source: HorizonSource
    median_gap_days: float | None = None
    regular_buyers: int = 0

    def why(self) -> str:
        """The reason in plain words, e.g. "chosen from your customers' rhythm: …"."""
        if self.source is HorizonSource.OPERATOR:
            return f"named by the operator (--horizon {self.days:.0f}d)"
        if self.source is HorizonSource.DEFAULT or self.median_gap_days is None:
            return (
                f"the default {days(self.days)}: only {self._buyers()} ({REGULAR_ORDERS}+ "
                f"orders), at least {MIN_REGULAR_BUYERS} are needed to read your customers' "
                "rhythm"
            )
        raw = HORIZON_GAPS * self.median_gap_days
        kept = (
            f" (kept within {MIN_HORIZON_DAYS:.0f}–{MAX_HORIZON_DAYS:.0f} days)"
            if not MIN_HORIZON_DAYS < raw < MAX_HORIZON_DAYS
            else ""
        )
        return (
            f"chosen from your customers' rhythm: median gap {days(self.median_gap_days)} "
            f"among {self._buyers()} → horizon {days(self.days)}{kept}"
        )

    def _buyers(self) -> str:
        n = self.regular_buyers
        return f"{n:,} regular buyer" if n == 1 else f"{n:,} regular buyers"

    def describe(self) -> str:
        """One line: the horizon and its reason."""
        return f"horizon {days(self.days)}, {self.why()}"


def named_horizon(days: float) -> HorizonChoice:
    """A horizon the operator named (``--horizon``)."""
    if not days > 0:
        raise ValueError(f"a horizon must be longer than zero days, not {days}")
    return HorizonChoice(days, HorizonSource.OPERATOR)


def operator_horizon(days: float) -> HorizonChoice:
    """A horizon written on the command line (``--horizon 30d``): whole days, at least one."""
    if days > 0 and (days < 1 or days != int(days)):
        raise ValueError(
            f"a horizon is counted in whole days, not {days:g} days: write "
            f"{max(round(days), 1)}d (a customer's rhythm is days apart, not hours)"
        )
    return named_horizon(days)


def horizon_for_gap(median_gap_days: float) -> float:
    """:data:`HORIZON_GAPS` typical gaps, rounded to whole weeks, within the bounds."""
    weeks = round(HORIZON_GAPS * median_gap_days / 7.0)
    return min(max(7.0 * weeks, MIN_HORIZON_DAYS), MAX_HORIZON_DAYS)


def choose_horizon(
    customers: Iterable[tuple[int, float | None]], regular_buyers: int | None = None
) -> HorizonChoice:
    """The horizon that fits these customers' rhythm.

    ``customers`` are ``(orders, typical gap in days)`` pairs, one per customer (a sample
    spread over the base will do); only regular buyers count. ``regular_buyers``: how many
    the whole base has, when ``customers`` is a sample of it — the count shown (a sample's
    would understate it); the median is the sample's.
    """
    gaps = [
        gap for orders, gap in customers if orders >= REGULAR_ORDERS and gap is not None and gap > 0
    ]
    counted = len(gaps) if regular_buyers is None else regular_buyers
    if len(gaps) < MIN_REGULAR_BUYERS or counted < MIN_REGULAR_BUYERS:
        shown = len(gaps) if counted >= MIN_REGULAR_BUYERS else counted
        return HorizonChoice(DEFAULT_HORIZON_DAYS, HorizonSource.DEFAULT, None, shown)
    median = float(statistics.median(gaps))
    return HorizonChoice(horizon_for_gap(median), HorizonSource.RHYTHM, median, counted)
