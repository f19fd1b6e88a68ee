"""A list ranks customers by their standing, computed from a stats row without assessing
them; it must be the very numbers :func:`reengage.detect.assess` gives, bit for bit, or a
list would order two close customers differently from the full scan it is held to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from reengage.detect import Population, Profile, assess
from reengage.digest.selection import Candidate, worth_a_call
from reengage.digest.standings import plain_priority, standing, standing_of
from reengage.lapse_model import LapseModel
from reengage.store.rep_stats import ValuedRow

NOW = datetime(2026, 11, 23, 6, 30, 0, 123456, tzinfo=UTC)
_moments = st.one_of(
    st.none(),
    st.integers(-900 * 86_400_000_000, 10 * 86_400_000_000).map(
        lambda us: NOW - timedelta(microseconds=us)
    ),
)
_ratio = st.one_of(st.none(), st.floats(0.01, 3.0), st.sampled_from([0.7, 0.69999, 0.70001]))
_model = st.one_of(
    st.just(LapseModel()),
    st.tuples(*[st.floats(-3, 3)] * 7).map(lambda w: LapseModel(90.0, w, NOW, 500)),
    st.tuples(*[st.floats(-3, 3)] * 17).map(lambda w: LapseModel(90.0, w, NOW, 500)),
)


@st.composite
def profiles(draw: st.DrawFn) -> Profile:
    first, last, seen = draw(_moments), draw(_moments), draw(_moments)
    if first is not None and last is not None and first > last:
        first, last = last, first
    if last is None:
        first = None
    return Profile(
        customer_id=1,
        external_id="c1",
        segment=draw(st.sampled_from([None, "cafe", "retail"])),
        activity_count=draw(st.integers(0, 50)),
        order_count=draw(st.integers(0, 40)) if last is not None else 0,
        first_order_at=first,
        last_order_at=last,
        last_activity_at=seen,
        total_value=draw(st.one_of(st.just(0.0), st.floats(0.01, 1e7))),
        total_margin=0.0,
        typical_gap_days=draw(st.one_of(st.none(), st.floats(0.5, 800))),
        count_ratio=draw(_ratio),
        aov_ratio=draw(_ratio),
        margin_ratio=draw(_ratio),
    )


def _row(p: Profile) -> ValuedRow:
    return ValuedRow(
        p.customer_id,
        p.segment,
        p.order_count,
        p.first_order_at,
        p.last_order_at,
        p.last_activity_at,
        p.total_value,
        p.typical_gap_days,
        p.count_ratio,
        p.aov_ratio,
        p.margin_ratio,
    )


@settings(max_examples=400, deadline=None)
@given(profiles(), _model, st.floats(0.5, 400), st.floats(0.5, 400))
def test_standing_is_what_assess_gives(
    profile: Profile, model: LapseModel, everyone: float, cafe: float
) -> None:
    population = Population(everyone, {"cafe": cafe})
    a = assess(profile, population, NOW, model)
    s = standing(_row(profile), population, model, NOW)
    if a is None:
        assert s is None
        return
    assert s == standing_of(a)
    assert s.flagged == (a.value_per_year > 0 and worth_a_call(a))
    # The priority a flagged customer with no call and no reply is ranked by: detection's.
    assert plain_priority(s) == a.priority
    assert plain_priority(s) == Candidate(1, a).priority == Candidate(1, known=s).priority
