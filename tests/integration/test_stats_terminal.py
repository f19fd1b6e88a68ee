"""``reengage stats`` read in a terminal of 60, 80 and 200 columns: every number whole.

The command runs as a person runs it, against a real store; the counts it reads are big
ones (tens of thousands of mails, a long campaign name, a long verdict), handed in where the
store's snapshot would come from, as filling a store with 18,517 mails would take minutes.
"""

from __future__ import annotations

import collections
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from reengage.digest import CausesReport
from reengage.digest.outcomes import CauseRow
from reengage.stats import results as results_module
from reengage.store import Store
from reengage.store.campaign_counts import ArmCounts, CampaignCounts, StepCounts
from reengage.store.stats import Snapshot, StatsQueries
from reengage.store.uplift import UpliftCount
from tests.integration import inprocess

LONG = "habit-lapsed-tips-for-wholesale-customers-in-the-north-region"
LONG_STEP = "second-tip-for-those-who-did-not-answer"
NOT_ENOUGH = "not enough data yet: 125 treated and 13 held out"

# What the tables must show, each whole: counts with thousands separated, money in whole
# units, rates as count/total (percent).
WHOLE = [
    "12,345",  # mails of the long campaign's first step
    "12,342",
    "6,172",
    "6,170",
    "2,469",
    "18,517",  # its mails over all steps
    "18,512",
    "1,763",
    "1,234",
    "1,028",
    "13,716",  # enrolled: 12,345 treated and 1,371 held out
    "1,371",
    "54,322",  # revenue
    "125",
    "138",
    "13",
    "543",  # 542.8199999999999
    "8,000",
    "5,000",
    "2,500",
    "1,876",
    "9,876",
    "1,234,568",  # value at risk
    "1,122/12,345 (9.1%)",
    "102/1,371 (7.4%)",
    "11/125 (8.8%)",
    "1/13 (7.7%)",
    "1,111/6,543 (17.0%)",  # uplift: a segment with a number, and one without (12 held out)
    "55/727 (7.6%)",
    "555/4,321 (12.8%)",
    "1,666/10,864 (15.3%)",  # the same customers by rhythm class
    "56/739 (7.6%)",
]


def big_snapshot() -> Snapshot:
    """A long campaign with a measurable lift, and "win-back" with too few customers."""
    long = CampaignCounts(LONG)
    long.treatment = ArmCounts(
        enrolled=12345,
        converted=1234,
        revenue=54321.87,
        reactivated=1122,
        enrolled_by_day={date(2026, 11, 2): 12345},
        reactivated_by_day={date(2026, 11, 9): 1122},
    )
    long.holdout = ArmCounts(
        enrolled=1371, reactivated=102, revenue=4321.5, enrolled_by_day={date(2026, 11, 2): 1371}
    )
    long.steps["hello"] = StepCounts(
        first_seen=datetime(2026, 11, 2, tzinfo=UTC),
        sent=12345,
        delivered=12342,
        bounced=3,
        responses={"open": 6172, "click": 2469, "reply": 17, "unsubscribe": 9, "complaint": 1},
        reactivated=1028,
        revenue=50000.87,
    )
    long.steps[LONG_STEP] = StepCounts(
        first_seen=datetime(2026, 11, 9, tzinfo=UTC), sent=6172, delivered=6170, bounced=2
    )
    long.steps["call"] = StepCounts(
        first_seen=datetime(2026, 11, 16, tzinfo=UTC), calls=1763, reactivated=206, revenue=4321.0
    )
    win = CampaignCounts("win-back")
    win.treatment = ArmCounts(
        enrolled=125,
        converted=12,
        revenue=542.8199999999999,
        reactivated=11,
        enrolled_by_day={date(2026, 11, 2): 125},
    )
    win.holdout = ArmCounts(enrolled=13, reactivated=1, enrolled_by_day={date(2026, 11, 2): 13})
    win.steps["hello"] = StepCounts(
        first_seen=datetime(2026, 11, 2, tzinfo=UTC),
        sent=125,
        delivered=125,
        reactivated=12,
        revenue=542.8199999999999,
    )
    return Snapshot({LONG: long, "win-back": win})


def big_uplift() -> list[UpliftCount]:
    """The long campaign's customers who have had the whole window: a long segment name
    with thousands each side, and customers without a segment with too few held out."""
    segment = "wholesale-key-accounts-north"
    return [
        UpliftCount(LONG, False, segment, "weekly", 6543, 1111),
        UpliftCount(LONG, True, segment, "weekly", 727, 55),
        UpliftCount(LONG, False, None, "weekly", 4321, 555),
        UpliftCount(LONG, True, None, "weekly", 12, 1),
    ]


def big_causes(store: Any, since: Any) -> CausesReport:
    rows = [
        CauseRow("price", calls=8000, specific=5000, systemic=2500, unsure=500),
        CauseRow("delivery", calls=1876, systemic=1876, value_lost=542.8199999999999),
    ]
    rows[0].value_lost = 1234567.891
    return CausesReport(
        None,
        calls=12345,
        reached=9876,
        rows=rows,
        next_steps=collections.Counter(),
        value_lost=1234567.891 + 542.8199999999999,
    )


@pytest.fixture
def big(store: Store, monkeypatch: pytest.MonkeyPatch, database_url: str) -> dict[str, str]:
    """The command's environment, on a store whose counts are :func:`big_snapshot`."""
    monkeypatch.setattr(StatsQueries, "snapshot", lambda self, **_: big_snapshot())
    monkeypatch.setattr(StatsQueries, "campaign_ids", lambda self: [LONG, "win-back"])
    monkeypatch.setattr(StatsQueries, "uplift", lambda self, **_: big_uplift())
    monkeypatch.setattr(results_module, "causes", big_causes)
    return {"REENGAGE_DATABASE_URL": database_url, "REENGAGE_NOW": "2026-12-01T09:00:00+00:00"}


def stats(env: dict[str, str], columns: int, *args: str, cwd: Path) -> str:
    done = inprocess.cli("stats", *args, cwd=cwd, env={**env, "COLUMNS": str(columns)})
    assert done.returncode == 0, done.stderr
    return done.stdout


def assert_whole(text: str) -> None:
    """Every number of :data:`WHOLE` appears with nothing cut off either side."""
    assert "…" not in text
    words = flat(text)  # a paragraph may wrap between "1/13" and "(7.7%)", never inside
    for number in WHOLE:
        assert re.search(rf"(?<![\d,.]){re.escape(number)}(?!\d|[,.]\d)", words), number


def flat(text: str) -> str:
    """The words of ``text`` without line breaks (a wrapped paragraph in one line)."""
    return " ".join(text.split())


@pytest.mark.parametrize("columns", [80, 60])
def test_a_narrow_terminal_gets_a_block_per_campaign_with_every_number_whole(
    big: dict[str, str], tmp_path: Path, columns: int
) -> None:
    text = stats(big, columns, cwd=tmp_path)
    assert_whole(text)
    assert max(len(line) for line in text.splitlines()) <= columns
    assert f"{LONG[:40]}" in text and "13,716 entered: 12,345 treated, 1,371 held out" in flat(text)
    assert "Verdict: lift of 1.6 points" in flat(text)
    assert f"Verdict: {NOT_ENOUGH}, 12 reactivated (a verdict needs 30 in each" in flat(text)
    verdict_lines = [i for i, line in enumerate(text.splitlines()) if NOT_ENOUGH[:20] in line]
    (first,) = verdict_lines
    ending = next(i for i, line in enumerate(text.splitlines()) if "reactivations)" in line)
    assert ending - first <= 3  # a paragraph of a few lines, not a column of a dozen


def test_a_wide_terminal_gets_every_campaign_in_one_table(
    big: dict[str, str], tmp_path: Path
) -> None:
    text = stats(big, 200, cwd=tmp_path)
    assert_whole(text)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 200
    header = next(line for line in lines if "campaign / step" in line)
    for column in ("entered", "sent", "opened*", "complaints", "reactivated", "revenue"):
        assert column in header
    assert any(LONG in line and "13,716" in line and "18,517" in line for line in lines)
    verdict = [i for i, line in enumerate(lines) if "win-back" in line and NOT_ENOUGH in line]
    assert len(verdict) == 1


def test_wide_asks_for_the_one_table_in_a_narrow_terminal(
    big: dict[str, str], tmp_path: Path
) -> None:
    text = stats(big, 80, "--wide", cwd=tmp_path)
    assert_whole(text)
    header = next(line for line in text.splitlines() if "campaign / step" in line)
    assert "sent" in header and "complaints" in header and "revenue" in header
