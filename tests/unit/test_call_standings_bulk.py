"""A rep's list scores its customers' stats rows all at once (NumPy) and one by one only
where an approximation could change the list; the list must be the one scoring every row
one by one gives (:func:`standing`, itself bit for bit :func:`reengage.detect.assess`):
the same customers flagged (so the same "N more worth a call"), the same top in the same
order with the same priorities.

Populations mix every kind of row (one-time buyers, visitors who never ordered, shrinking
orders, rhythms of days to years, fitted models of any weights), twins that tie on
priority, and customers whose lapse score sits at the threshold: silent to the
microsecond where their score crosses :data:`MIN_LAPSE_SCORE`, or one microsecond either
side.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from reengage.detect import Population
from reengage.digest.standings import (
    MIN_LAPSE_SCORE,
    all_standings,
    plain_priority,
    standing,
)
from reengage.lapse_model import LapseModel
from reengage.store.rep_stats import RepStats, ValuedRow

NOW = datetime(2026, 11, 23, 6, 30, 0, 123456, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_US = 86_400_000_000
_model = st.one_of(
    st.just(LapseModel()),
    st.tuples(*[st.floats(-3, 3)] * 7).map(lambda w: LapseModel(90.0, w, NOW, 500)),
    st.tuples(*[st.floats(-3, 3)] * 17).map(lambda w: LapseModel(90.0, w, NOW, 500)),
)
_ratio = st.one_of(st.none(), st.floats(0.01, 3.0), st.sampled_from([0.7, 0.69999, 0.70001]))


def _us(at: datetime | None) -> int | None:
    return None if at is None else (at - EPOCH) // timedelta(microseconds=1)


SEGMENTS = ("cafe", "retail")  # the population knows only the first


def _columns(row: ValuedRow) -> tuple[Any, ...]:
    """The row as the store reads it (timestamps in microseconds, segment as an index)."""
    return (
        row.customer_id,
        SEGMENTS.index(row.segment) + 1 if row.segment else 0,
        row.order_count,
        _us(row.first_order_at),
        _us(row.last_order_at),
        _us(row.last_activity_at),
        row.total_value,
        row.typical_gap_days,
        row.count_ratio,
        row.aov_ratio,
        row.margin_ratio,
    )


@st.composite
def _shape(draw: st.DrawFn) -> dict[str, Any]:
    """A customer's stats, silence apart: the last order comes ``silent`` before now."""
    ordered = draw(st.booleans())
    return {
        "segment": draw(st.sampled_from([None, "cafe", "retail"])),
        "order_count": draw(st.integers(0, 40)) if ordered else 0,
        "span": draw(st.integers(0, 900 * DAY_US)) if ordered else None,
        "seen": draw(st.one_of(st.none(), st.integers(-10 * DAY_US, 900 * DAY_US))),
        "silent": draw(st.integers(-10 * DAY_US, 900 * DAY_US)),
        "total_value": draw(st.one_of(st.just(0.0), st.floats(0.01, 1e7))),
        "typical_gap_days": draw(st.one_of(st.none(), st.floats(0.5, 800))),
        "ratios": (draw(_ratio), draw(_ratio), draw(_ratio)),
        "where": draw(st.sampled_from(["anywhere", "at the threshold", "twins"])),
    }


def _row(cid: int, shape: dict[str, Any], silent_us: int) -> ValuedRow:
    last = NOW - timedelta(microseconds=silent_us)
    seen = shape["seen"]
    seen_at = None if seen is None else NOW - timedelta(microseconds=seen)
    count, aov, margin = shape["ratios"]
    return ValuedRow(
        cid,
        shape["segment"],
        shape["order_count"],
        None if shape["span"] is None else last - timedelta(microseconds=shape["span"]),
        None if shape["span"] is None else last,
        seen_at if shape["span"] is not None or seen_at is not None else last,
        shape["total_value"],
        shape["typical_gap_days"],
        count,
        aov,
        margin,
    )


def _crossing(shape: dict[str, Any], population: Population, model: LapseModel) -> int | None:
    """The silence, to the microsecond, at which this customer's score first reaches the
    threshold from below (or falls under it), if it crosses within 900 days."""

    def over(silent_us: int) -> bool:
        s = standing(_row(0, shape, silent_us), population, model, NOW)
        return s is not None and s.lapse_score >= MIN_LAPSE_SCORE

    low, high = 0, 900 * DAY_US
    if over(low) == over(high):
        return None
    below = over(low)
    while high - low > 1:
        mid = (low + high) // 2
        if over(mid) == below:
            low = mid
        else:
            high = mid
    return high


@settings(max_examples=150, deadline=None)
@given(
    st.lists(_shape(), max_size=40),
    _model,
    st.floats(0.5, 400),
    st.floats(0.5, 400),
    st.integers(0, 15),
)
def test_bulk_standings_list_what_one_by_one_lists(
    shapes: list[dict[str, Any]],
    model: LapseModel,
    everyone: float,
    cafe: float,
    size: int,
) -> None:
    population = Population(everyone, {"cafe": cafe})
    rows: list[ValuedRow] = []
    for shape in shapes:
        crossing = _crossing(shape, population, model) if shape["where"] != "anywhere" else None
        if shape["where"] == "at the threshold" and crossing is not None:
            for silent_us in (crossing - 1, crossing, crossing + 1):
                rows.append(_row(len(rows) + 1, shape, silent_us))
        elif shape["where"] == "twins":  # tie on priority: the lower id is listed first
            n = len(rows)
            rows.extend(_row(n + k, shape, shape["silent"]) for k in (2, 1))
        else:
            rows.append(_row(len(rows) + 1, shape, shape["silent"]))
    stats = RepStats.of(SEGMENTS, [_columns(r) for r in rows])
    assert [stats.row(i) for i in range(len(rows))] == rows  # the same instants back

    one_by_one = [standing(r, population, model, NOW) for r in rows]
    bulk = all_standings(stats, population, model, NOW)
    assert bulk.present.tolist() == [s is not None for s in one_by_one]
    assert bulk.flagged.tolist() == [s is not None and s.flagged for s in one_by_one]
    flagged = np.flatnonzero(bulk.flagged)
    exact = {rows[i].customer_id: one_by_one[i] for i in flagged.tolist()}
    priority = {cid: plain_priority(s) for cid, s in exact.items() if s is not None}
    for i in flagged.tolist():  # every approximation within the margin the cut relies on
        p = priority[rows[i].customer_id]
        assert abs(bulk.priority[i] - p) <= bulk.margin * p

    expected = sorted((-p, cid) for cid, p in priority.items())
    best = bulk.best(flagged, size)
    assert sorted((-p, cid) for p, cid, _ in best)[:size] == expected[:size]
    for p, cid, s in best:
        assert (p, s) == (priority[cid], exact[cid])
