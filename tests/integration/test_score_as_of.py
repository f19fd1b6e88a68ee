"""`reengage score --as-of/--backtest` on the dates a tester tried: the date a refused
backtest suggests is accepted, a date before the history is refused, a one-day horizon says
why half of it has no row, the regular buyers are counted over the whole base, and one day
or one hour reads as such. Real imports, real databases."""

from __future__ import annotations

import csv
import re
from datetime import timedelta
from pathlib import Path

import pytest

from reengage.store import Store
from reengage.store.detection import DetectionReads
from tests.integration import inprocess
from tests.integration.rhythm_world import FAST
from tests.integration.test_score_horizon import NOW, RHYTHM, imported

pytestmark = pytest.mark.clock  # the commands read the (pinned) process clock


def cli(*args: str, cwd: Path, url: str, env: dict[str, str] | None = None) -> inprocess.Result:
    return inprocess.cli(
        *args,
        cwd=cwd,
        env={
            "REENGAGE_DATABASE_URL": url,
            "REENGAGE_NOW": NOW.isoformat(),
            "REENGAGE_SECRET_KEY": "d" * 40,
            "REENGAGE_SPOOL_DIR": str(cwd / "spool"),
            "COLUMNS": "200",
            **(env or {}),
        },
    )


def quickening(folder: Path, url: str) -> None:
    """A business whose rhythm quickened: 100 furniture buyers have ordered every 100 days
    for four years; 200 newcomers every 30 days since 120 days ago. As of ten days ago the
    newcomers are most regular buyers (horizon 13 weeks); 91 days ago they were not regular
    yet (one order each), so a backtest as of then answers for 300 days."""
    folder.mkdir()
    people, orders = folder / "customers.csv", folder / "activities.csv"
    with people.open("w", newline="") as p, orders.open("w", newline="") as o:
        p_rows, o_rows = csv.writer(p), csv.writer(o)
        p_rows.writerow(["customer_id", "email"])
        o_rows.writerow(["activity_id", "customer_id", "occurred_at", "kind", "amount"])
        for key, count, gap, first in [
            *((f"S{i:03d}", 15, 100, 1500 + i) for i in range(100)),
            *((f"F{i:03d}", 4, 30, 120 + i % 5) for i in range(200)),
        ]:
            p_rows.writerow([key, f"{key.lower()}@example.com"])
            for n in range(count):
                at = NOW - timedelta(days=first - n * gap)
                o_rows.writerow([f"{key}-{n}", key, at.isoformat(), "order", "50.00"])
    assert cli("db", "upgrade", cwd=folder, url=url).returncode == 0
    for kind, path in (("customers", people), ("activities", orders)):
        result = cli("import", kind, str(path), cwd=folder, url=url)
        assert result.returncode == 0, result.stderr


def suggested(stderr: str) -> str:
    said = r"(?:the latest date that can be checked is|a date on or before) (\d{4}-\d\d-\d\d)"
    found = re.search(said, flat(stderr))
    assert found is not None, stderr
    return found[1]


def flat(text: str) -> str:
    """The words of an error box as one line."""
    return " ".join(re.sub(r"[\u2500-\u257f]", " ", text).split())


def test_the_date_a_refused_backtest_suggests_is_accepted(
    tmp_path: Path, database_url: str
) -> None:
    """The suggestion answers for the horizon the backtest as of it will use: the rhythm as it
    stood then (300 days), not as it stood on the refused date (91 days)."""
    quickening(tmp_path / "shop", database_url)
    cwd = tmp_path / "shop"
    late = (NOW - timedelta(days=10)).date().isoformat()
    refused = cli("score", "--backtest", "--as-of", late, cwd=cwd, url=database_url)
    assert refused.returncode == 2
    assert "the horizon chosen from your customers' rhythm (91 days)" in flat(refused.stderr)
    day = suggested(refused.stderr)
    accepted = cli("score", "--backtest", "--as-of", day, cwd=cwd, url=database_url)
    assert accepted.returncode == 0, accepted.stderr
    assert "its own horizon, from the rhythm as it stood then, is 301 days" in flat(refused.stderr)
    assert "P(no order within 301 days)" in accepted.stdout, accepted.stdout
    assert f"Scored 100 customers as of {day}" in accepted.stdout

    # A named horizon is the same for every date: the suggestion is that far back.
    named = cli(
        "score", "--backtest", "--as-of", late, "--horizon", "60d", cwd=cwd, url=database_url
    )
    assert named.returncode == 2
    day = suggested(named.stderr)
    assert day == (NOW - timedelta(days=60)).date().isoformat()
    again = cli(
        "score", "--backtest", "--as-of", day, "--horizon", "60d", cwd=cwd, url=database_url
    )
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize(
    "args", [(), ("--backtest",), ("--fit",)], ids=["score", "backtest", "fit"]
)
def test_an_as_of_date_before_the_history_is_refused_naming_the_first_date_accepted(
    tmp_path: Path, database_url: str, args: tuple[str, ...]
) -> None:
    assert cli("db", "upgrade", cwd=tmp_path, url=database_url).returncode == 0
    empty = cli("score", *args, "--as-of", "2026-08-01", cwd=tmp_path, url=database_url)
    assert empty.returncode == 2
    assert "there is no activity to judge yet: import your history first" in flat(empty.stderr)

    imported(tmp_path, database_url, FAST)
    store = Store.open(database_url)
    try:
        first = store.customers.overview().first_activity_at
    finally:
        store.close()
    assert first is not None
    accepted = f"{first + timedelta(days=1):%Y-%m-%d}"
    before = cli("score", *args, "--as-of", "1800-01-01", cwd=tmp_path, url=database_url)
    assert before.returncode == 2, before.stdout
    assert (
        f"1800-01-01 is before your history begins (first activity {first:%Y-%m-%d}), so "
        f"nobody has a history to judge as of it: the first date accepted is {accepted}"
    ) in flat(before.stderr)
    # Its first day is not "before" it: there is just nothing before that day to judge.
    day = f"{first:%Y-%m-%d}"
    first_day = cli("score", *args, "--as-of", day, cwd=tmp_path, url=database_url)
    assert first_day.returncode == 2, first_day.stdout
    assert (
        f"{day} is the first day of your history, so there is no history before it to "
        f"judge: the first date accepted is {accepted}"
    ) in flat(first_day.stderr)
    assert "before your history begins" not in flat(first_day.stderr)
    for result in (before, first_day):
        assert "saved" not in result.stdout and "Scored" not in result.stdout
    named = cli("score", *args, "--as-of", accepted, cwd=tmp_path, url=database_url)
    assert named.returncode == 0, named.stderr


def test_a_one_day_horizon_says_why_half_a_day_has_no_row_and_reads_one_day(
    tmp_path: Path, database_url: str
) -> None:
    imported(tmp_path, database_url, FAST)
    result = cli(
        "score",
        "--backtest",
        "--as-of",
        "2026-08-01",
        "--horizon",
        "1d",
        cwd=tmp_path,
        url=database_url,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "P(no order within 1 day): named by the operator (--horizon 1d)." in out
    rows = re.findall(r"│ (\d+ days?)\s+│", out)
    assert rows == ["1 day", "2 days"], out
    assert (
        "Half of 1 day (12 hours) is not shown: a horizon is counted in whole days, and "
        "within hours a late delivery or a weekend, not a lost habit, decides who comes back."
    ) in flat(out)
    assert not re.search(r"\b1 (days|hours)\b", out)

    fitted = cli("score", "--fit", "--horizon", "1d", cwd=tmp_path, url=database_url)
    assert fitted.returncode == 0, fitted.stderr
    assert "horizon 1 day" in fitted.stdout and "1 days" not in fitted.stdout
    doctor = cli(
        "doctor", cwd=tmp_path, url=database_url, env={"REENGAGE_MODEL_REFIT_EVERY_HOURS": "1"}
    ).stdout
    assert "lapse horizon: 1 day, named by the operator" in doctor, doctor
    assert not re.search(r"\b1 (days|hours)\b", doctor), doctor


@pytest.mark.parametrize("sample", [200, 40], ids=["half-sampled", "regulars-rare-in-sample"])
def test_the_horizon_counts_every_regular_buyer_not_a_samples(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, sample: int
) -> None:
    """The median is read from a sample; the regular buyers it names are the whole base's.
    With so few sampled that too few regular buyers are among them, the rhythm is read from
    regular buyers sampled as such, not the default taken for want of them."""
    imported(tmp_path, database_url, FAST)
    store = Store.open(database_url)
    try:
        regulars = sum(
            p.order_count >= 3 and (p.typical_gap_days or 0) > 0 for p in store.detection.profiles()
        )
    finally:
        store.close()
    read = DetectionReads.rhythm_sample
    monkeypatch.setattr(DetectionReads, "rhythm_sample", lambda self, size=2000: read(self, sample))
    scored = cli("score", cwd=tmp_path, url=database_url)
    assert scored.returncode == 0, scored.stderr
    found = RHYTHM.search(scored.stdout)
    assert found is not None, scored.stdout
    assert int(found[3]) == regulars > 100, scored.stdout
    assert 21 <= int(found[1]) <= 35  # a grocer's horizon, whatever the sample
