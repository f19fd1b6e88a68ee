"""When detection next looks at a customer is never later than the first moment they meet
an audience (issue 19): checked against the pass's own rule at many later moments, score
rules included (they are dated with the model that scored the customer)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reengage.audience import earliest_entry, entry_day, next_look
from reengage.campaigns import Campaign, parse_campaign
from reengage.detect import Population, Profile, assess
from reengage.lapse_model import LapseModel
from tests.integration.test_detection_looks import AUDIENCES

NOW = datetime(2026, 11, 29, 23, 40, tzinfo=UTC)
POPULATION = Population(21.0, {"retail": 14.0})
INFO: dict[str, Any] = {"tags": ["vip"], "rep": None, "paused_until": None}


def campaign(audience: str, **options: Any) -> Campaign:
    extra = "".join(f"{k}: {v}\n" for k, v in options.items())
    text = (
        f"id: c\nname: C\n{extra}audience:\n  {audience}\n"
        'from: "Acme <hello@acme.example>"\n'
        "steps:\n  - {key: first, after: 0d, subject: Hi, template: tips/tip-1.html.j2}\n"
    )
    parsed, problems = parse_campaign(text, "c.yaml")
    assert parsed is not None, problems
    return parsed


profiles = st.builds(
    lambda orders, gap, silent, aov_ratio, segment: Profile(
        1,
        "k1",
        segment,
        orders,
        orders,
        NOW - timedelta(days=silent + gap * max(orders - 1, 0)),
        NOW - timedelta(days=silent),
        NOW - timedelta(days=silent),
        120.0 * orders,
        30.0 * orders,
        gap if orders > 1 else None,
        None,
        aov_ratio,
        aov_ratio,
    ),
    st.integers(1, 15),
    st.floats(1.0, 90.0),
    st.floats(0.0, 150.0),
    st.sampled_from([None, 0.4, 0.9]),
    st.sampled_from([None, "retail"]),
)
models = st.one_of(
    st.just(LapseModel()),
    st.lists(st.floats(-1.5, 1.5), min_size=7, max_size=7).map(
        lambda w: LapseModel(90.0, tuple(w), NOW, 500)
    ),
    st.lists(st.floats(-1.5, 1.5), min_size=17, max_size=17).map(
        lambda w: LapseModel(90.0, tuple(w), NOW, 500)
    ),
)


# Score rules of every kind: a minimum score, a ceiling, the value at risk, the priority.
SCORE_AUDIENCES = [
    "lapsed: {factor: 0.5, min_score: 0.7}",
    "lapsed: {factor: 1.0, max_days_silent: 120, min_score: 0.9}",
    "where: ['lapse_score > 0.4', 'lapse_score <= 0.8']",
    "lapsed: {factor: 1.0}\n  where: ['value_at_risk >= 300']",
    "where: ['priority > 200', 'days_silent > 10']",
    "where: ['value_at_risk < 250', 'lapse_score >= 0.5']",
]


@settings(max_examples=300, deadline=None)
@given(profile=profiles, audience=st.sampled_from(AUDIENCES + SCORE_AUDIENCES), model=models)
def test_no_customer_meets_an_audience_before_the_look_it_was_given(
    profile: Profile, audience: str, model: LapseModel
) -> None:
    c = campaign(audience)
    a = assess(profile, POPULATION, NOW, model)
    assert a is not None
    lo = earliest_entry(c, a, INFO, model)
    moments = [hours / 24 for hours in range(0, 24 * 200, 7)]
    if lo is not None:  # just before the look: where a late look would show
        moments += [d for d in (lo - 1e-5, lo - 0.001, lo - 0.05, lo - 0.15) if d >= 0]
    for days in moments:
        later = assess(profile, POPULATION, NOW + timedelta(days=days), model)
        assert later is not None
        meets = entry_day(c, later, INFO, 1, model) == 0.0
        if lo is None or days < lo - 1e-6:
            assert not meets, f"meets it {days} days from now; looked at {lo} days"


def test_a_closing_window_on_silence_is_never_looked_at_again_once_shut() -> None:
    c = campaign("lapsed: {factor: 1.2, min_days_silent: 10}\n  where: ['days_silent < 60']")
    for silent in (0.0, 5.0, 30.0, 50.0, 59.0, 59.5, 59.99, 60.01, 61.0, 100.0):
        p = Profile(1, "k1", None, 5, 5, NOW - timedelta(days=silent + 80),
                    NOW - timedelta(days=silent), NOW - timedelta(days=silent),
                    500.0, 100.0, 20.0, None, None, None)  # fmt: skip
        a = assess(p, POPULATION, NOW)
        assert a is not None
        lo = earliest_entry(c, a, INFO)
        if a.days_silent >= 60:
            assert lo is None
        else:
            expected = max(0.0, 1.2 * a.expected_gap_days - a.days_silent, 10 - a.days_silent)
            assert lo == pytest.approx(expected)


def test_the_look_waits_for_a_pause_and_the_re_entry_window_and_skips_a_busy_customer() -> None:
    c = campaign("lapsed: {factor: 1.0, min_days_silent: 5}", not_enrolled_within_days=20)
    p = Profile(1, "k1", None, 5, 5, NOW - timedelta(days=200), NOW - timedelta(days=30),
                NOW - timedelta(days=30), 500.0, 100.0, 20.0, None, None, None)  # fmt: skip
    a = assess(p, POPULATION, NOW)
    assert a is not None
    assert next_look([c], a, INFO, running=set(), recent={}, now=NOW) == NOW
    paused = {**INFO, "paused_until": NOW + timedelta(days=9)}
    assert next_look([c], a, paused, running=set(), recent={}, now=NOW) == NOW + timedelta(days=9)
    entered = {"c": NOW - timedelta(days=3)}
    assert next_look([c], a, INFO, running=set(), recent=entered, now=NOW) == NOW + timedelta(
        days=17
    )
    assert next_look([c], a, INFO, running={"other"}, recent={}, now=NOW) is None
    assert next_look([c], a, INFO, running={"c"}, recent={}, now=NOW) is None
    assert next_look([c], a, None, running=set(), recent={}, now=NOW) is None


def test_the_look_waits_for_the_end_of_a_holdout_window() -> None:
    c = campaign("lapsed: {factor: 1.0, min_days_silent: 5}", not_enrolled_within_days=20)
    p = Profile(1, "k1", None, 5, 5, NOW - timedelta(days=200), NOW - timedelta(days=30),
                NOW - timedelta(days=30), 500.0, 100.0, 20.0, None, None, None)  # fmt: skip
    a = assess(p, POPULATION, NOW)
    assert a is not None
    held = NOW + timedelta(days=12)
    assert next_look([c], a, INFO, running=set(), recent={}, now=NOW, held_until=held) == held
    entered = {"c": NOW - timedelta(days=3)}  # the re-entry window ends later still
    later = next_look([c], a, INFO, running=set(), recent=entered, now=NOW, held_until=held)
    assert later == NOW + timedelta(days=17)
    over = NOW - timedelta(days=1)  # a window already over holds nobody back
    assert next_look([c], a, INFO, running=set(), recent={}, now=NOW, held_until=over) == NOW
