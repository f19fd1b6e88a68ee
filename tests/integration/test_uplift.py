"""Who contact actually helps, against a real store (issue 22): a campaign's history with a
known effect by segment — A: +20 points, B: none, C: too few to say — measured per segment,
shown by ``reengage stats`` at 80 columns and in JSON and CSV, and ``min_uplift`` enrolling
A and not B (and everyone while the data is thin), exactly, pass after pass."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from reengage import simulate
from reengage.authoring import validate
from reengage.campaigns import Campaign, parse_campaign
from reengage.enroll import detect_and_enroll
from reengage.ingest import Kind, import_items
from reengage.stats import campaign_results
from reengage.store import Store
from reengage.store.sending import NewEnrollment
from reengage.uplift import MIN_GROUP, UpliftKind, uplift_by_campaign, with_min_uplift
from tests.integration import inprocess
from tests.integration.test_simulate import workspace

T0 = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)  # when the history entered the campaign
NOW = T0 + timedelta(days=60)  # everyone of the history has had the whole 30-day window
UTC_ZONE = ZoneInfo("UTC")
# segment: (treated, of them came back, held out, of them came back)
KNOWN = {
    "A": (300, 105, 100, 15),  # 35% against 15%: +20 points
    "B": (300, 60, 100, 20),  # 20% against 20%: contact changes nothing
    "C": (40, 10, 8, 2),  # 8 held out: too few to say
}


def _customers(store: Store, segments: dict[str, str | None]) -> dict[str, int]:
    items = [
        {"customer_id": key, "email": f"{key}@example.com", "first_name": key}
        | ({"segment": segment} if segment else {})
        for key, segment in segments.items()
    ]
    report = import_items(store, Kind.CUSTOMERS, items, now=T0, zone=UTC_ZONE)
    assert report.ok, report.rejected
    return store.customers.customer_ids(list(segments))


def _orders(store: Store, orders: list[tuple[str, datetime]], now: datetime) -> None:
    items = [
        {"customer_id": key, "occurred_at": when.isoformat(), "amount": 50.0}
        for key, when in orders
    ]
    report = import_items(store, Kind.ACTIVITIES, items, now=now, zone=UTC_ZONE)
    assert report.ok, report.rejected


def history(
    store: Store,
    campaign: str,
    known: dict[str, tuple[int, int, int, int]],
    *,
    entered: datetime = T0,
    prefix: str = "h",
    then: str | None = None,
) -> None:
    """Customers of each segment enter ``campaign`` at ``entered``, treated or held out as
    ``known`` says (and the treated enter ``then`` too, an hour later); those who come back
    buy ten days later."""
    keys: dict[str, str | None] = {}
    rows: list[tuple[str, bool, bool]] = []  # key, held out, comes back
    for segment, (treated, treated_back, held, held_back) in known.items():
        for held_out, n, back in ((False, treated, treated_back), (True, held, held_back)):
            for i in range(n):
                key = f"{prefix}-{campaign}-{segment}-{'h' if held_out else 't'}{i:03d}"
                keys[key] = segment
                rows.append((key, held_out, i < back))
    ids = _customers(store, keys)
    store.sending.enroll(
        [NewEnrollment(ids[key], campaign, held, "first", entered) for key, held, _ in rows],
        entered,
    )
    if then is not None:
        an_hour = entered + timedelta(hours=1)
        treated = [ids[key] for key, held, _ in rows if not held]
        store.sending.enroll(
            [NewEnrollment(cid, then, False, "first", an_hour) for cid in treated], an_hour
        )
    later = entered + timedelta(days=10)
    _orders(store, [(key, later) for key, _, back in rows if back], now=later)


def test_a_known_effect_by_segment_is_measured_per_segment(store: Store) -> None:
    history(store, "habit", KNOWN)
    # B customers who entered ten days ago and all came back have not had the whole window:
    # they do not count (in neither group), or B would look like it helps.
    history(store, "habit", {"B": (50, 50, 0, 0)}, entered=NOW - timedelta(days=10), prefix="n")

    found = uplift_by_campaign(store, NOW)["habit"]
    a, b, c = (found.segment(s) for s in "ABC")
    assert a is not None and b is not None and c is not None
    assert (a.treated, a.treated_came_back, a.held_out, a.held_out_came_back) == KNOWN["A"]
    assert (b.treated, b.treated_came_back, b.held_out, b.held_out_came_back) == KNOWN["B"]
    assert a.uplift is not None and round(a.uplift, 6) == 0.20
    assert a.interval is not None and a.interval.contains(0.20) and a.interval.low > 0
    assert a.kind is UpliftKind.HELPS
    assert b.uplift is not None and round(b.uplift, 6) == 0.0
    assert b.interval is not None and b.interval.contains(0.0)
    assert b.kind is UpliftKind.NO_MEASURABLE_EFFECT
    assert c.uplift is None and c.interval is None
    assert c.verdict == (
        f"not enough data (40 treated, 8 held out; needs {MIN_GROUP} of each who have had "
        "the whole 30-day window)"
    )
    # Rhythm classes: who came back has one order, the others none yet.
    assert [g.label for g in found.rhythms] == ["one order"]
    # A shorter window lets the recent B customers in.
    short = uplift_by_campaign(store, NOW, horizon=timedelta(days=7))["habit"].segment("B")
    assert short is not None and short.treated == 350


def test_a_campaign_keeps_its_returns_when_its_treated_customers_enter_another(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    # The treated of "habit" enter "follow_up" an hour later (a campaign that runs in
    # parallel, or one whose audience they meet next). Their purchases are credited to
    # follow_up, the latest; habit's treated must still count as having come back, or its
    # lift reads as harm and min_uplift shuts out the segments contact helps.
    history(store, "habit", KNOWN, then="follow_up")

    found = uplift_by_campaign(store, NOW)["habit"]
    a, b = found.segment("A"), found.segment("B")
    assert a is not None and b is not None
    assert (a.treated, a.treated_came_back, a.held_out, a.held_out_came_back) == KNOWN["A"]
    assert (b.treated, b.treated_came_back, b.held_out, b.held_out_came_back) == KNOWN["B"]
    assert a.kind is UpliftKind.HELPS

    results = {c.campaign_id: c for c in campaign_results(store, NOW).campaigns}
    habit, follow_up = results["habit"], results["follow_up"]
    assert (habit.lift.treated, habit.lift.treated_reactivated) == (640, 175)
    assert (habit.lift.held_out, habit.lift.held_out_reactivated) == (208, 37)
    assert habit.funnel.reactivated == 0  # the credit for the purchase stays with the latest
    assert follow_up.funnel.reactivated == 175
    assert habit.also_entered == 640 and follow_up.also_entered == 0

    env = {"REENGAGE_DATABASE_URL": database_url, "REENGAGE_NOW": NOW.isoformat()}
    for columns in ("80", "200"):
        shown = inprocess.cli("stats", cwd=tmp_path, env={**env, "COLUMNS": columns})
        assert shown.returncode == 0, shown.stderr
        words = cells(shown.stdout)
        assert (
            "habit: 640 of 640 treated also entered another campaign within 30 days of "
            "entering this one; their returns count for each, so this lift is of habit "
            "with what followed it"
        ) in words, words
        assert "follow_up: 0 of" not in words and "so this lift is of follow_up" not in words
    as_json = inprocess.cli("stats", "--format", "json", cwd=tmp_path, env=env)
    shown_json = {c["campaign"]: c for c in json.loads(as_json.stdout)["campaigns"]}
    assert shown_json["habit"]["treated_also_entered_another"] == 640
    # Named as the README names it: came back (within the horizon), not reactivated (a
    # purchase credited to a mail: none for habit, the credit went to follow_up).
    assert shown_json["habit"]["lift"]["treated_came_back"] == 175
    assert shown_json["habit"]["reactivated"] == 0
    assert shown_json["follow_up"]["lift"]["held_out_came_back"] is None  # nobody held out
    assert shown_json["follow_up"]["treated_also_entered_another"] == 0


def test_stats_says_the_lift_counts_who_is_still_inside_the_window_so_far(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    # 50 treated and 20 held out entered ten days ago: the lift counts them as they stand,
    # the uplift table does not yet. Without a word the two tables read as two lifts.
    history(store, "habit", KNOWN)
    history(store, "habit", {"B": (50, 5, 20, 1)}, entered=NOW - timedelta(days=10), prefix="n")
    env = {"REENGAGE_DATABASE_URL": database_url, "REENGAGE_NOW": NOW.isoformat()}
    for columns in ("80", "200"):
        shown = inprocess.cli("stats", cwd=tmp_path, env={**env, "COLUMNS": columns})
        assert shown.returncode == 0, shown.stderr
        assert (
            "habit: 50 of 690 treated and 20 of 228 held out entered within the last 30 days: "
            "the lift counts them as they stand (so far, not yet the whole window); the "
            "uplift by segment counts only who has had the whole window."
        ) in cells(shown.stdout), cells(shown.stdout)
    (habit,) = json.loads(inprocess.cli("stats", "--format", "json", cwd=tmp_path, env=env).stdout)[
        "campaigns"
    ]
    assert (habit["treated_in_window"], habit["held_out_in_window"]) == (50, 20)
    assert (habit["treated"], habit["held_out"]) == (690, 228)
    # Once everyone has had the window, nothing is said.
    later = {**env, "REENGAGE_NOW": (NOW + timedelta(days=21)).isoformat(), "COLUMNS": "80"}
    assert "entered within the last" not in inprocess.cli("stats", cwd=tmp_path, env=later).stdout


def test_a_campaign_without_holdout_says_so_and_how_to_keep_one(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    # holdout_percent 0: plenty treated, nobody held out. "Not enough data" would have the
    # marketer wait for data that never comes.
    history(store, "blast", {"A": (300, 105, 0, 0), "B": (300, 60, 0, 0)})

    found = uplift_by_campaign(store, NOW, no_holdout={"blast"})["blast"]
    assert not found.keeps_holdout
    assert {g.kind for g in found.segments} == {UpliftKind.NO_HOLDOUT}
    env = {"REENGAGE_DATABASE_URL": database_url, "REENGAGE_NOW": NOW.isoformat()}
    for columns in ("80", "200"):
        shown = inprocess.cli("stats", cwd=tmp_path, env={**env, "COLUMNS": columns})
        assert shown.returncode == 0, shown.stderr
        words = cells(shown.stdout)
        assert "not enough data" not in words
        assert "nobody who entered was held out" in words, words
        assert "give the campaign a holdout_percent (10 is usual) in its YAML" in words
        assert "no estimate until there is a verdict" not in words  # there never will be
        if columns == "80":  # a block per campaign: the lift in a sentence
            assert "no estimate: nobody was held out to compare with" in words
    as_json = inprocess.cli("stats", "--format", "json", cwd=tmp_path, env=env)
    (blast,) = json.loads(as_json.stdout)["campaigns"]
    assert {g["verdict_kind"] for g in blast["uplift"]["by_segment"]} == {"no_holdout"}


def cells(text: str) -> str:
    """The words of a terminal's tables and lines, in reading order, without the boxes (a
    cell that wraps in the last column reads on: the cells beside it are blank)."""
    return " ".join(re.sub(r"[\u2500-\u257f]", " ", text).split())


def test_stats_shows_the_uplift_per_segment_at_80_columns_in_json_and_csv(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    history(store, "habit", KNOWN)
    env = {"REENGAGE_DATABASE_URL": database_url, "REENGAGE_NOW": NOW.isoformat()}

    narrow = inprocess.cli("stats", cwd=tmp_path, env={**env, "COLUMNS": "80"})
    assert narrow.returncode == 0, narrow.stderr
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80
    words = cells(narrow.stdout)
    assert "Uplift: who contact helps" in words
    assert "segment: A 105/300 (35.0%) 15/100 (15.0%) 20.0 pts" in words
    assert "segment: B 60/300 (20.0%) 20/100 (20.0%) 0.0 pts" in words
    assert "segment: C 10/40 (25.0%) 2/8 (25.0%) —" in words
    assert re.search(r"segment: A 1\d\.\d to 2\d\.\d contact helps", words), words
    assert re.search(r"segment: B −\d\.\d to \d\.\d no measurable effect", words), words
    assert (
        "segment: C — not enough data (40 treated, 8 held out; needs 30 of each who have "
        "had the whole 30-day window)"
    ) in words
    assert "rhythm: one order 175/640 (27.3%) 37/208 (17.8%) 9.6 pts" in words

    wide = inprocess.cli("stats", cwd=tmp_path, env={**env, "COLUMNS": "200"})
    assert wide.returncode == 0, wide.stderr
    assert "habit" in wide.stdout and "  segment: A" in wide.stdout

    as_json = inprocess.cli("stats", "--format", "json", cwd=tmp_path, env=env)
    assert as_json.returncode == 0, as_json.stderr
    (habit,) = json.loads(as_json.stdout)["campaigns"]
    uplift = habit["uplift"]
    assert uplift["min_per_group"] == MIN_GROUP and uplift["horizon_days"] == 30
    segments = {g["segment"]: g for g in uplift["by_segment"]}
    assert segments["A"]["uplift_points"] == 20.0 and segments["A"]["verdict_kind"] == "helps"
    assert segments["A"]["ci_low_points"] < 20.0 < segments["A"]["ci_high_points"]
    assert segments["B"]["uplift_points"] == 0.0
    assert segments["C"]["uplift_points"] is None
    assert segments["C"]["verdict_kind"] == "not_enough_data"
    assert [g["rhythm"] for g in uplift["by_rhythm"]] == ["one order"]

    as_csv = inprocess.cli("stats", "--format", "csv", cwd=tmp_path, env=env)
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    points = {r["subgroup"]: r["value"] for r in rows if r["measure"] == "segment_uplift_points"}
    assert points == {"A": "20.0", "B": "0.0"}  # none for C: not enough data
    entered = sum(int(r["value"]) for r in rows if r["measure"] == "segment_entered")
    assert entered == sum(t + h for t, _, h, _ in KNOWN.values())  # each customer once


CAMPAIGN = """\
id: habit
name: Habit lapsed
audience:
  lapsed: {factor: 2.0, min_days_silent: 21}
  min_uplift: 0.05
holdout_percent: 10
from: "Acme <hello@acme.example>"
steps:
  - {key: first, after: 0d, subject: Hi, template: tips/tip-1.html.j2}
"""


def _campaign() -> Campaign:
    parsed, problems = parse_campaign(CAMPAIGN, "campaigns/habit.yaml")
    assert parsed is not None, problems
    return parsed


def newcomers(store: Store, segments: str, each: int = 12) -> dict[str, list[int]]:
    """``each`` customers per segment who ordered every ten days and have been silent for
    80: lapsed for the campaign. Their ids by segment."""
    keys = {f"new-{s}-{i:02d}": s for s in segments for i in range(each)}
    ids = _customers(store, dict(keys))
    _orders(
        store,
        [(key, NOW - timedelta(days=days)) for key in keys for days in (100, 90, 80)],
        now=NOW,
    )
    return {s: [ids[k] for k, seg in keys.items() if seg == s] for s in segments}


def entered(store: Store, ids: list[int]) -> int:
    """How many of ``ids`` entered "habit" (treated or held out)."""
    return len({cid for cid, *_ in store.sending.enrollment_history(ids, T0)})


def test_min_uplift_enrolls_whom_contact_helps_and_who_is_unknown_and_not_the_rest(
    store: Store,
) -> None:
    history(store, "habit", KNOWN)
    new = newcomers(store, "ABCD")  # D: nobody of D ever entered
    report = detect_and_enroll(store, [_campaign()], NOW)
    assert report.whole
    assert entered(store, new["A"]) == 12
    assert entered(store, new["B"]) == 0  # contact changes nothing for B: 0 < 0.05
    assert entered(store, new["C"]) == 12  # too little data to say: enrolled as before
    assert entered(store, new["D"]) == 12

    # Nothing changed: the next pass looks only at who is due, and takes nobody.
    again = detect_and_enroll(store, [_campaign()], NOW + timedelta(minutes=30))
    assert not again.whole and entered(store, new["B"]) == 0

    # B's customers turn out to come back more when contacted (300 more treated, 250 of
    # them back): B now clears the bar. The looks said "never" for B's newcomers, so only
    # a whole pass finds them — and the changed rule makes the next pass whole.
    history(store, "habit", {"B": (300, 250, 0, 0)}, prefix="more")
    later = detect_and_enroll(store, [_campaign()], NOW + timedelta(hours=1))
    assert later.whole
    assert entered(store, new["B"]) == 12


def test_min_uplift_is_measured_at_most_hourly_and_every_worker_filters_with_the_kept_list(
    store: Store, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    history(store, "habit", KNOWN)
    new = newcomers(store, "AB")
    measured: list[datetime] = []
    counts = store.stats.uplift

    def counted(**kwargs: Any) -> Any:
        measured.append(kwargs["now"])
        return counts(**kwargs)

    monkeypatch.setattr(store.stats, "uplift", counted)
    assert detect_and_enroll(store, [_campaign()], NOW).whole
    assert entered(store, new["A"]) == 12 and entered(store, new["B"]) == 0
    assert measured == [NOW]

    # B turns out to be helped after all; within the hour the kept list stands: the passes
    # measure nothing (the grouped query costs seconds a million enrollments) and look only
    # at who is due, as the list they filter with has not changed.
    history(store, "habit", {"B": (300, 250, 0, 0)}, prefix="more")
    for minutes in (1, 30, 59):
        again = detect_and_enroll(store, [_campaign()], NOW + timedelta(minutes=minutes))
        assert not again.whole and entered(store, new["B"]) == 0
    assert measured == [NOW]
    # Another worker filters with the very same list, without measuring.
    other = Store.open(database_url)
    try:
        monkeypatch.setattr(other.stats, "uplift", counted)
        (ruled,) = with_min_uplift(other, [_campaign()], NOW + timedelta(minutes=30))
        assert ruled.audience is not None
        assert [f.value for f in ruled.audience.where] == [("B",)]
    finally:
        other.close()
    assert measured == [NOW]

    # An hour on it is measured again, once: B clears the bar, and the pass is whole.
    later = detect_and_enroll(store, [_campaign()], NOW + timedelta(hours=1))
    assert later.whole and entered(store, new["B"]) == 12
    assert measured == [NOW, NOW + timedelta(hours=1)]


def test_min_uplift_enrolls_everyone_while_the_data_is_thin(store: Store) -> None:
    history(store, "habit", {"A": (40, 14, 10, 1), "B": (40, 0, 10, 9)})  # −90 points, 10 held
    new = newcomers(store, "AB")
    detect_and_enroll(store, [_campaign()], NOW)
    assert entered(store, new["A"]) == 12 and entered(store, new["B"]) == 12


def test_simulate_plans_with_min_uplift_as_the_daemon_decides(store: Store) -> None:
    """``reengage simulate`` applies the rule as measured when it starts: B's newcomers
    are not planned to enter, A's are."""
    history(store, "habit", KNOWN)
    newcomers(store, "AB")
    plan = simulate.simulate(workspace(), store, [_campaign()], now=NOW, days=3, sample=0)
    planned = {e.customer.split("-")[1] for e in plan.entries if e.customer.startswith("new-")}
    assert planned == {"A"}
    assert sum(e.customer.startswith("new-A") for e in plan.entries) == 12
    # ... and the plan says who the rule left out, and why: the 12 newcomers of B. The
    # history's customers who bought and are silent again entered habit within its
    # not_enrolled_within_days, whatever their segment, and are counted for that.
    left_out = {why: n for why, n in plan.skipped.items() if "min_uplift" in why}
    why = "habit: segment 'B' left out by min_uplift 0.05 (contact helps them less)"
    assert left_out == {why: 12}
    recently = plan.skipped["habit: enrolled in it within the last 90 days"]
    assert recently == sum(back + held_back for _, back, _, held_back in KNOWN.values())


def test_validate_warns_when_min_uplift_has_no_holdout_to_learn_from(tmp_path: Path) -> None:
    path = tmp_path / "habit.yaml"
    path.write_text(CAMPAIGN.replace("holdout_percent: 10", "holdout_percent: 0"))
    found = validate(workspace(), [path], tmp_path)
    (warning,) = [str(p) for p in found.problems if "min_uplift" in p.field]
    assert warning.startswith("habit.yaml:5: warning: audience.min_uplift: min_uplift compares")
    assert "holdout_percent is 0" in warning and "habit" in found.campaigns  # still loads
    path.write_text(CAMPAIGN)
    assert not [p for p in validate(workspace(), [path], tmp_path).problems if "uplift" in p.field]


@pytest.mark.parametrize("columns", [36, 30])
def test_stats_uplift_fits_a_narrow_terminal_with_every_figure_whole(
    store: Store, database_url: str, tmp_path: Path, columns: int
) -> None:
    """A phone's terminal: "420/1,200 (35.0%)" is wider than the room beside the group
    names, so it wraps between its words; no line is wider than the terminal, no figure cut."""
    history(store, "habit", {"A": (1200, 420, 1000, 150), "B": (300, 60, 100, 20)})
    env = {"REENGAGE_DATABASE_URL": database_url, "REENGAGE_NOW": NOW.isoformat()}
    shown = inprocess.cli("stats", cwd=tmp_path, env={**env, "COLUMNS": str(columns)})
    assert shown.returncode == 0, shown.stderr
    uplift = shown.stdout[shown.stdout.index("Uplift: who contact helps") :]
    assert max(len(line) for line in uplift.splitlines()) <= columns, uplift
    assert "…" not in uplift
    words = cells(uplift).split()
    for figure in ("420/1,200", "(35.0%)", "150/1,000", "(15.0%)", "60/300", "(20.0%)"):
        assert figure in words, (figure, uplift)
    for figure in ("20.0", "0.0", "pts", "contact", "helps"):
        assert figure in words, (figure, uplift)
