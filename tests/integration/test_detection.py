"""Detection against real databases: the fast pass, the as-of rebuild and the backtest agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reengage import backtesting, scoring
from reengage.detect import fit_population
from reengage.ingest import Kind, import_file
from reengage.lapse_model import FEATURES, LapseModel
from reengage.seed import write_dataset
from reengage.store import Store

NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def seeded(store: Store, tmp_path: Path) -> Store:
    data = write_dataset(tmp_path / "data", 400, seed=11, now=NOW)
    for kind, path in ((Kind.CUSTOMERS, data.customers), (Kind.ACTIVITIES, data.activities)):
        import_file(store, kind, path, now=NOW, zone=ZoneInfo("UTC"))
    return store


def test_indexed_pass_finds_exactly_who_full_assessment_finds(seeded: Store) -> None:
    population, assessments = scoring.assess_all(seeded, NOW)
    rule = scoring.LapseCriteria(factor=2.0, min_days_silent=21, max_days_silent=365)
    expected = {
        a.profile.customer_id
        for a in assessments
        if a.profile.order_count > 0 and 21 <= a.days_silent <= 365 and a.lapse_ratio >= rule.factor
    }
    found = scoring.lapsed_audience(seeded, NOW, rule, population)
    assert {c.customer_id for c in found} == expected
    assert len(expected) > 10
    by_id = {a.profile.customer_id: a for a in assessments}
    assert all(c.lapse_score is None for c in found)  # not asked for, not computed
    strict = scoring.LapseCriteria(
        factor=2.0, min_days_silent=21, max_days_silent=365, min_score=0.6
    )
    scored = scoring.lapsed_audience(seeded, NOW, strict, population)
    assert {c.customer_id for c in scored} == {i for i in expected if by_id[i].lapse_score >= 0.6}
    for candidate in scored:
        assert candidate.lapse_score == pytest.approx(by_id[candidate.customer_id].lapse_score)


def test_the_indexed_pass_scores_with_the_history_shape_as_assessing_everyone_does(
    seeded: Store,
) -> None:
    # A model that reads the trends (issue 22), which the covering index leaves out: the
    # pass must find exactly whom assessing everyone with the same model finds.
    weights = dict.fromkeys(FEATURES, 0.0) | {
        "bias": -1.0,
        "prior": 1.0,
        "gap_trend": -2.0,
        "value_trend": -1.5,
        "own_vs_peers": 0.8,
        "spread": 0.6,
    }
    model = LapseModel(90.0, tuple(weights[f] for f in FEATURES), NOW, 400)
    population, assessments = scoring.assess_all(seeded, NOW, model=model)
    assert any(a.profile.count_ratio is not None for a in assessments)
    rule = scoring.LapseCriteria(factor=1.5, min_days_silent=7, max_days_silent=365, min_score=0.5)
    expected = {
        a.profile.customer_id
        for a in assessments
        if a.profile.order_count > 0
        and 7 <= a.days_silent <= 365
        and a.lapse_ratio >= rule.factor
        and a.lapse_score >= rule.min_score
    }
    found = scoring.lapsed_audience(seeded, NOW, rule, population, model)
    assert {c.customer_id for c in found} == expected
    assert len(expected) > 10
    by_id = {a.profile.customer_id: a for a in assessments}
    for candidate in found:
        assert candidate.lapse_score == pytest.approx(by_id[candidate.customer_id].lapse_score)


def test_history_as_of_today_matches_the_running_stats(seeded: Store) -> None:
    live = {p.external_id: p for p in seeded.detection.profiles()}
    rebuilt = {p.external_id: p for p in seeded.detection.profiles_as_of(NOW + timedelta(days=1))}
    assert live.keys() == rebuilt.keys()
    for key, profile in live.items():
        other = rebuilt[key]
        assert (profile.order_count, profile.last_order_at) == (
            other.order_count,
            other.last_order_at,
        )
        assert profile.typical_gap_days == other.typical_gap_days
        assert profile.aov_ratio == pytest.approx(other.aov_ratio)


def test_as_of_ignores_later_activity(seeded: Store) -> None:
    cut = NOW - timedelta(days=200)
    for profile in seeded.detection.profiles_as_of(cut):
        assert profile.last_activity_at is not None
        assert profile.last_activity_at <= cut


def test_population_from_a_sample_is_close_to_the_full_fit(seeded: Store) -> None:
    full = fit_population((p.segment, p.typical_gap_days) for p in seeded.detection.profiles())
    sampled = fit_population(seeded.detection.gap_sample(size=50))
    assert sampled.typical_gap_days == pytest.approx(full.typical_gap_days, rel=0.5)


def test_backtest_beats_plain_recency_on_seeded_history(seeded: Store) -> None:
    report, fit = backtesting.backtest(
        seeded, as_of=NOW - timedelta(days=120), horizon=timedelta(days=90)
    )
    assert fit.kept_prior_because is None  # enough history before the as-of date to learn from
    assert fit.model.fitted_as_of == NOW - timedelta(days=120)
    by_name = {m.name: m for m in report.methods}
    ours = by_name["lapse_score (reengage)"].auc
    recency = by_name["plain recency (days silent)"].auc
    assert ours is not None
    assert recency is not None
    assert ours > recency
    assert 0 < report.did_not_return < report.customers
    assert sum(row.count for row in report.calibration) == report.customers
