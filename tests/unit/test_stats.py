"""The statistics behind "lift": Wilson and Newcombe intervals against published values,
their coverage on data with a known truth, the verdicts, and how results are shaped."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from reengage.digest import CausesReport
from reengage.digest.outcomes import CauseRow
from reengage.errors import InputError
from reengage.stats import (
    CallReason,
    CallResults,
    CampaignResult,
    Funnel,
    Results,
    StepResult,
    VerdictKind,
    campaign_results,
    lift,
    newcombe,
    parse_since,
    to_csv,
    to_json,
    wilson,
)
from reengage.stats import results as results_module
from reengage.stats.export import MEASURES
from reengage.store.campaign_counts import ArmCounts, CampaignCounts, StepCounts
from reengage.store.stats import Snapshot
from reengage.store.uplift import UpliftCount

# Newcombe (1998a), "Two-sided confidence intervals for the single proportion: comparison
# of seven methods", Statistics in Medicine 17:857-872, Table I, method 3 (Wilson score).
WILSON_PUBLISHED = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
]

# Newcombe (1998b), "Interval estimation for the difference between independent
# proportions: comparison of eleven methods", Statistics in Medicine 17:873-890, Table II,
# method 10 (hybrid score). The same figures come out of statsmodels 0.14's
# confint_proportions_2indep(method="newcomb"), computed independently in a scratch venv.
NEWCOMBE_PUBLISHED = [
    (56, 70, 48, 80, 0.0524, 0.3339),
    (9, 10, 3, 10, 0.1705, 0.8090),
    (6, 7, 2, 7, 0.0582, 0.8062),
    (5, 56, 0, 29, -0.0381, 0.1926),
    (0, 10, 0, 20, -0.1611, 0.2775),
    (0, 10, 0, 10, -0.2775, 0.2775),
    (10, 10, 0, 20, 0.6791, 1.0000),
    (10, 10, 0, 10, 0.6075, 1.0000),
]


@pytest.mark.parametrize(("x", "n", "low", "high"), WILSON_PUBLISHED)
def test_wilson_matches_published_values(x: int, n: int, low: float, high: float) -> None:
    found = wilson(x, n)
    assert round(found.low, 4) == low
    assert round(found.high, 4) == high


@pytest.mark.parametrize(("x1", "n1", "x2", "n2", "low", "high"), NEWCOMBE_PUBLISHED)
def test_newcombe_matches_published_values(
    x1: int, n1: int, x2: int, n2: int, low: float, high: float
) -> None:
    found = newcombe(x1, n1, x2, n2)
    assert round(found.low, 4) == low
    assert round(found.high, 4) == high


def test_newcombe_is_antisymmetric_and_contains_the_estimate() -> None:
    forward, backward = newcombe(30, 400, 2, 45), newcombe(2, 45, 30, 400)
    assert forward.low == pytest.approx(-backward.high)
    assert forward.high == pytest.approx(-backward.low)
    assert forward.contains(30 / 400 - 2 / 45)


def test_intervals_refuse_impossible_counts() -> None:
    with pytest.raises(ValueError, match="at least one trial"):
        wilson(0, 0)
    with pytest.raises(ValueError, match="between 0 and n=10"):
        newcombe(11, 10, 1, 10)


def _draw(rng: random.Random, p: float, n: int) -> int:
    return sum(rng.random() < p for _ in range(n))


@pytest.mark.parametrize(
    ("p_treated", "p_held", "n_treated", "n_held"),
    [
        (0.15, 0.10, 900, 100),  # a 10% holdout with a 5-point lift
        (0.12, 0.04, 300, 30),  # small and rare: where a normal approximation breaks down
        (0.08, 0.08, 450, 50),  # no lift at all
    ],
)
def test_the_interval_covers_the_true_lift_about_95_percent_of_the_time(
    p_treated: float, p_held: float, n_treated: int, n_held: int
) -> None:
    rng = random.Random(20261123)
    truth = p_treated - p_held
    trials = 1500
    covered = sum(
        newcombe(
            _draw(rng, p_treated, n_treated), n_treated, _draw(rng, p_held, n_held), n_held
        ).contains(truth)
        for _ in range(trials)
    )
    assert 0.93 <= covered / trials <= 0.98


def test_a_wald_interval_would_fail_the_same_coverage_check() -> None:
    """The check above has teeth: the normal approximation undercovers on small rare data."""
    rng = random.Random(20261123)
    truth, trials, covered = 0.12 - 0.04, 1500, 0
    for _ in range(trials):
        x1, x2 = _draw(rng, 0.12, 300), _draw(rng, 0.04, 30)
        p1, p2 = x1 / 300, x2 / 30
        se = (p1 * (1 - p1) / 300 + p2 * (1 - p2) / 30) ** 0.5
        covered += p1 - p2 - 1.96 * se <= truth <= p1 - p2 + 1.96 * se
    assert covered / trials < 0.93


def test_verdict_on_data_with_a_true_lift_reports_it_with_its_interval() -> None:
    rng = random.Random(7)
    treated = _draw(rng, 0.20, 4000)
    held = _draw(rng, 0.10, 1000)
    found = lift(4000, treated, 1000, held)
    assert found.kind is VerdictKind.LIFT
    assert found.interval is not None and found.interval.contains(0.10)
    assert found.verdict.startswith("lift of ")
    assert "points, 95% CI " in found.verdict


def test_verdict_on_data_without_lift_says_no_measurable_lift() -> None:
    rng = random.Random(11)
    found = lift(2000, _draw(rng, 0.10, 2000), 220, _draw(rng, 0.10, 220))
    assert found.kind is VerdictKind.NO_MEASURABLE_LIFT
    assert found.verdict.startswith("no measurable lift")
    assert found.interval is not None and found.interval.contains(0.0)


def test_verdict_wording_matches_the_published_example() -> None:
    found = lift(70, 56, 80, 48)
    assert found.verdict == "lift of 20.0 points, 95% CI 5.2–33.4"
    worse = lift(80, 48, 70, 56)
    assert worse.kind is VerdictKind.NEGATIVE
    assert worse.verdict == (
        "fewer reactivations than the holdout: −20.0 points, 95% CI −33.4 to −5.2"
    )
    flat = lift(100, 11, 100, 10)
    assert flat.verdict == "no measurable lift (+1.0 points, 95% CI −7.8 to 9.8)"


def test_too_little_data_waits_for_more_and_says_what_is_needed() -> None:
    small = lift(200, 40, 12, 1)
    assert small.kind is VerdictKind.NOT_ENOUGH_DATA
    assert small.verdict.startswith("not enough data yet")
    assert "30 in each group" in small.verdict
    assert small.interval is not None, "the numbers are still shown"
    no_one_came_back = lift(500, 2, 60, 0)
    assert no_one_came_back.kind is VerdictKind.NOT_ENOUGH_DATA
    no_holdout = lift(500, 50, 0, 0)
    assert no_holdout.kind is VerdictKind.NO_HOLDOUT
    assert no_holdout.interval is None and no_holdout.verdict.startswith("no holdout group")


# -- shaping the store's counts into results ------------------------------------------------

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


# Who of win-back has had the whole window, by segment (two) and rhythm class (one).
UPLIFT = [
    UpliftCount("win-back", False, "retail", "weekly", 50, 9),
    UpliftCount("win-back", True, "retail", "weekly", 6, 1),
    UpliftCount("win-back", False, None, "weekly", 10, 1),
]


class FakeStats:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snap = snapshot
        self.asked: dict[str, Any] = {}
        self.uplift_asked: dict[str, Any] = {}

    def uplift(self, **kwargs: Any) -> list[UpliftCount]:
        self.uplift_asked = kwargs
        return UPLIFT

    def campaign_ids(self) -> list[str]:
        return sorted(self.snap.campaigns)

    def snapshot(self, **kwargs: Any) -> Snapshot:
        self.asked = kwargs
        return self.snap


def fake_store(snapshot: Snapshot, monkeypatch: pytest.MonkeyPatch) -> Any:
    report = CausesReport(
        None,
        calls=4,
        reached=3,
        rows=[
            CauseRow("price", calls=1, specific=1, value_lost=500.0),
            CauseRow("delivery", calls=2, systemic=2, value_lost=1200.0),
        ],
        next_steps=__import__("collections").Counter(),
        value_lost=1700.0,
    )
    monkeypatch.setattr(results_module, "causes", lambda store, since: report)
    return SimpleNamespace(stats=FakeStats(snapshot), attribution_window=timedelta(days=30))


def sample_snapshot() -> Snapshot:
    c = CampaignCounts("win-back")
    c.treatment = ArmCounts(
        enrolled=90,
        converted=12,
        revenue=960.0,
        reactivated=10,
        enrolled_by_day={date(2026, 11, 20): 60, date(2026, 11, 21): 30},
        reactivated_by_day={date(2026, 11, 22): 10},
    )
    c.holdout = ArmCounts(
        enrolled=10, reactivated=1, enrolled_by_day={date(2026, 11, 20): 10}, revenue=40.0
    )
    c.steps["tip"] = StepCounts(
        first_seen=datetime(2026, 11, 27, tzinfo=UTC),
        sent=30,
        delivered=30,
        reactivated=4,
        revenue=260.0,
    )
    c.steps["hello"] = StepCounts(
        first_seen=datetime(2026, 11, 20, tzinfo=UTC),
        sent=90,
        delivered=88,
        bounced=2,
        responses={"open": 40, "click": 9},
        reactivated=8,
        revenue=700.0,
    )
    c.steps["call"] = StepCounts(first_seen=datetime(2026, 12, 4, tzinfo=UTC), calls=5)
    return Snapshot({"win-back": c})


def test_results_order_steps_as_met_and_sum_mails_but_count_people_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = fake_store(sample_snapshot(), monkeypatch)
    found = campaign_results(store, NOW, campaign="win-back")
    assert store.stats.asked == {"campaign": "win-back", "since": None, "horizon": timedelta(30)}
    (c,) = found.campaigns
    assert [s.key for s in c.steps] == ["hello", "tip", "call"]
    assert (c.enrolled, c.held_out) == (100, 10)
    assert (c.funnel.sent, c.funnel.delivered, c.funnel.bounced) == (120, 118, 2)
    assert (c.funnel.opened, c.funnel.clicked, c.funnel.calls) == (40, 9, 5)
    # people who came back: once each, though credited to two steps between them
    assert (c.funnel.reactivated, c.funnel.revenue) == (12, 960.0)
    assert (c.lift.treated, c.lift.treated_reactivated) == (90, 10)
    assert (c.lift.held_out, c.lift.held_out_reactivated) == (10, 1)
    assert c.lift.kind is VerdictKind.NOT_ENOUGH_DATA  # a holdout of 10
    assert c.timeline[0].day == date(2026, 11, 20) and c.timeline[-1].day == NOW.date()
    assert [(p.treated, p.treated_reactivated) for p in c.timeline] == [
        (60, 0),
        (90, 0),
        (90, 10),
        (90, 10),
    ]
    assert [r.reason for r in found.calls.reasons] == ["delivery", "price"]
    assert found.calls.scopes == {"specific": 1, "systemic": 2, "unsure": 0}


def test_an_unknown_campaign_is_refused_naming_the_known_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = fake_store(sample_snapshot(), monkeypatch)
    with pytest.raises(InputError, match=r"'winback'.*campaigns with results: win-back"):
        campaign_results(store, NOW, campaign="winback")


def test_json_and_csv_carry_the_same_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    found = campaign_results(fake_store(sample_snapshot(), monkeypatch), NOW)
    doc = json.loads(json.dumps(to_json(found)))
    (c,) = doc["campaigns"]
    assert c["campaign"] == "win-back" and c["sent"] == 120 and c["reactivated"] == 12
    assert c["lift"]["treated_rate"] == pytest.approx(11.11)
    assert [s["step"] for s in c["steps"]] == ["hello", "tip", "call"]
    assert "privacy" in doc["notes"]["opened"]
    assert c["revenue"] == 960.0 and c["held_out_revenue"] == 40.0
    by_segment = {g["segment"]: g for g in c["uplift"]["by_segment"]}
    assert by_segment["retail"]["treated"] == 50 and by_segment["retail"]["held_out"] == 6
    assert by_segment["retail"]["uplift_points"] is None  # 6 held out: not enough data
    assert by_segment["retail"]["verdict"].startswith("not enough data (50 treated, 6 held")
    assert [g["rhythm"] for g in c["uplift"]["by_rhythm"]] == ["weekly"]


def _total(rows: list[dict[str, str]], measure: str, **where: str) -> float:
    """What a spreadsheet's pivot table gives: the sum of one measure over the rows."""
    return sum(
        float(r["value"])
        for r in rows
        if r["measure"] == measure and all(r[k] == v for k, v in where.items())
    )


def test_csv_has_one_row_per_fact_so_its_sums_are_the_totals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = campaign_results(fake_store(sample_snapshot(), monkeypatch), NOW)
    (c,) = found.campaigns
    rows = list(csv.DictReader(io.StringIO(to_csv(found))))
    assert {r["measure"] for r in rows} <= set(MEASURES)
    win = {"campaign": "win-back"}
    assert _total(rows, "entered", **win) == c.enrolled == 100
    assert _total(rows, "entered", group="held_out", **win) == c.held_out == 10
    for name in ("sent", "delivered", "bounced", "opened", "clicked"):
        assert _total(rows, name, **win) == getattr(c.funnel, name), name
    assert _total(rows, "put_on_call_list", **win) == c.funnel.calls == 5
    assert _total(rows, "sent", step="hello") == 90
    assert _total(rows, "reactivated", **win) == c.funnel.reactivated == 12
    assert _total(rows, "revenue", group="treated", **win) == c.funnel.revenue == 960.0
    assert _total(rows, "came_back", group="treated") == c.lift.treated_reactivated
    (verdict,) = [r["value"] for r in rows if r["measure"] == "verdict_kind"]
    assert verdict == "not_enough_data"
    # Calls: each outcome once, by the reason and scope heard; one without a reason.
    assert _total(rows, "calls") == found.calls.calls == 4
    assert _total(rows, "calls", reason="delivery") == 2
    assert sum(_total(rows, "calls", scope=s) for s in ("specific", "systemic", "unsure")) == 3
    assert _total(rows, "value_at_risk") == 1700.0
    # Uplift: each customer who has had the whole window once per grouping, never twice.
    assert _total(rows, "segment_entered") == _total(rows, "rhythm_entered") == 66
    assert _total(rows, "segment_entered", subgroup="(no segment)") == 10
    assert _total(rows, "segment_came_back", group="held_out") == 1
    kinds = {r["subgroup"]: r["value"] for r in rows if r["measure"] == "segment_verdict_kind"}
    assert kinds == {"retail": "not_enough_data", "(no segment)": "not_enough_data"}
    assert not [r for r in rows if r["measure"] == "segment_uplift_points"]  # thin: no number


def test_a_campaign_without_a_holdout_has_no_holdout_rows_but_its_size() -> None:
    funnel = Funnel(sent=3)
    campaign = CampaignResult(
        "follow-up", 3, 0, funnel, [StepResult("hello", funnel)], lift(3, 0, 0, 0), [], 0.0
    )
    found = Results(NOW, None, None, timedelta(days=30), [campaign], CallResults(0, 0, [], {}, 0.0))
    rows = list(csv.DictReader(io.StringIO(to_csv(found))))
    held = [(r["measure"], r["value"]) for r in rows if r["group"] == "held_out"]
    assert held == [("entered", "0")]
    assert ("verdict_kind", "no_holdout") in {(r["measure"], r["value"]) for r in rows}


AMOUNTS = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)


@hypothesis.settings(
    deadline=None,  # rendering tables is slow on a loaded machine, not wrong
    derandomize=True,  # the same cases on every run: a failure reproduces
    database=None,
)
@hypothesis.given(step=AMOUNTS, held_out=AMOUNTS, lost=AMOUNTS)
def test_money_has_at_most_two_decimals_in_json_and_csv(
    step: float, held_out: float, lost: float
) -> None:
    funnel = Funnel(sent=3, reactivated=1, revenue=step)
    campaign = CampaignResult(
        "win-back", 40, 4, funnel, [StepResult("hello", funnel)], lift(36, 1, 4, 0), [], held_out
    )
    calls = CallResults(1, 1, [CallReason("price", 1, 0, 0, 1, lost)], {"specific": 1}, lost)
    found = Results(NOW, None, None, timedelta(days=30), [campaign], calls)
    text = json.dumps(to_json(found))
    doc = json.loads(text)
    (c,) = doc["campaigns"]
    amounts = [
        c["revenue"],
        c["held_out_revenue"],
        c["steps"][0]["revenue"],
        doc["calls"]["reasons"][0]["value_at_risk"],
    ]
    rows = list(csv.DictReader(io.StringIO(to_csv(found))))
    written_money = [r["value"] for r in rows if r["measure"] in ("revenue", "value_at_risk")]
    for value in written_money:  # as the README says: 0.00 and 269.50, not 0.0 or 269.5
        assert re.fullmatch(r"-?\d+\.\d\d", value), value
    amounts += [float(value) for value in written_money]
    for written, exact in zip(
        amounts, [step, held_out, step, lost, held_out, step, lost], strict=True
    ):
        assert written == pytest.approx(exact, abs=0.0051)  # half a cent, and float dust
        assert written == round(written, 2)
    for number in re.findall(r"\d+\.\d+", text + to_csv(found)):
        assert len(number.split(".")[1]) <= 2, number


def test_since_reads_dates_and_durations_and_names_the_forms_when_wrong() -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    assert parse_since("2026-11-01", NOW, berlin) == datetime(2026, 10, 31, 23, tzinfo=UTC)
    assert parse_since("30d", NOW, berlin) == NOW - timedelta(days=30)
    assert parse_since("2w", NOW, berlin) == NOW - timedelta(days=14)
    with pytest.raises(InputError, match="like 2026-01-31 or a time ago like 30d"):
        parse_since("last week", NOW, berlin)
