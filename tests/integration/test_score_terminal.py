"""What `reengage score` prints, as a tester read it: no figure or name cut at any terminal
width, the backtest judging the horizon of the model in force, the two gaps it names told
apart, and an empty database told how to fill it. Real imports, real databases."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from rich.cells import cell_len

from tests.integration.rhythm_world import FAST, SLOW
from tests.integration.test_score_as_of import cli as cli_at
from tests.integration.test_score_as_of import flat, suggested
from tests.integration.test_score_horizon import NOW, RHYTHM, imported

pytestmark = pytest.mark.clock  # the commands read the (pinned) process clock

# A backtest's figures: ROC AUCs (0.912) and precisions or shares (35%, 100%).
FIGURE = re.compile(r"(?<![\w.])\d+\.\d{3}(?![\w.])|(?<![\w.])\d+%")


def cli(*args: str, cwd: Path, url: str, columns: int = 200) -> str:
    result = cli_at(*args, cwd=cwd, url=url, env={"COLUMNS": str(columns)})
    assert result.returncode == 0, result.stderr
    return result.stdout


def fits(text: str, columns: int) -> None:
    """No line wider than the terminal, and nothing cut short with an ellipsis."""
    wide = [line for line in text.splitlines() if cell_len(line) > columns]
    assert not wide, "\n".join(wide)
    assert "…" not in text, text


@pytest.mark.parametrize("columns", [40, 60, 80])
def test_every_figure_and_name_of_the_backtest_is_whole_at_any_width(
    tmp_path: Path, database_url: str, columns: int
) -> None:
    imported(tmp_path, database_url, FAST)
    args = ("score", "--backtest", "--as-of", "2026-08-01")
    wide = cli(*args, cwd=tmp_path, url=database_url)
    narrow = cli(*args, cwd=tmp_path, url=database_url, columns=columns)
    fits(narrow, columns)
    figures = Counter(FIGURE.findall(wide))
    assert sum(figures.values()) > 30, wide  # the three tables' AUCs and precisions
    assert Counter(FIGURE.findall(narrow)) == figures, narrow
    for name in (
        "lapse_score (reengage)",
        "rhythm prior alone",
        "plain recency (days silent)",
        "lapse_ratio alone",
    ):
        for word in name.split():
            assert re.search(rf"(?<!\S){re.escape(word)}(?!\S)", narrow), (word, narrow)
    for header in ("precision,", "recency's", "calibration", "◀ chosen"):
        assert header.lower() in narrow.lower(), (header, narrow)
    assert RHYTHM.search(flat(narrow)) is not None, narrow


def test_score_its_as_of_and_its_fit_fit_forty_columns(tmp_path: Path, database_url: str) -> None:
    imported(tmp_path, database_url, FAST)
    for args in (("score",), ("score", "--as-of", "2026-08-01"), ("score", "--fit")):
        said = cli(*args, cwd=tmp_path, url=database_url, columns=40)
        fits(said, 40)
        assert RHYTHM.search(flat(said)) is not None, said
        if "--fit" in args:
            assert re.search(r"ROC AUC 0\.\d{3} \(plain recency 0\.\d{3}\)", flat(said)), said
        else:
            assert re.search(r"\d+ customers scored as of 2026-\d\d-\d\d:", flat(said)), said


def test_a_plain_backtest_judges_the_horizon_of_the_model_in_force(
    tmp_path: Path, database_url: str
) -> None:
    """After `score --fit --horizon 30d` the scores answer for 30 days: a backtest without
    --horizon judges those, says why, and still sets half and double beside them."""
    imported(tmp_path, database_url, FAST)
    rhythm = RHYTHM.search(cli("score", cwd=tmp_path, url=database_url))
    assert rhythm is not None and int(rhythm[1]) != 30
    saved = cli("score", "--fit", "--horizon", "30d", cwd=tmp_path, url=database_url)
    assert "saved: detection" in saved, saved

    said = cli("score", "--backtest", "--as-of", "2026-08-01", cwd=tmp_path, url=database_url)
    text = flat(said)
    assert "P(no order within 30 days): named by the operator (--horizon 30d)." in text
    assert "That is the horizon of the model in force (kept 2026-11-01), so this backtest " in (
        text
    )
    rows = {int(m[1]): m[0] for m in re.finditer(r"│ (\d+) days\s+│[^\n]*", said)}
    assert sorted(rows) == [15, 30, 60], said
    assert "◀ in force" in rows[30] and "◀" not in rows[15] + rows[60]
    assert "◀ chosen" not in said

    # Its dates are checked against 30 days too, and the date suggested is accepted.
    late = (NOW.date()).replace(day=1).isoformat()
    refused = cli_at("score", "--backtest", "--as-of", late, cwd=tmp_path, url=database_url)
    assert refused.returncode == 2
    assert "the horizon of the model in force (30 days)" in flat(refused.stderr)
    day = suggested(refused.stderr)
    assert day == "2026-10-02", refused.stderr
    again = cli("score", "--backtest", "--as-of", day, cwd=tmp_path, url=database_url)
    assert "P(no order within 30 days)" in flat(again)


def test_score_tells_the_gap_for_new_customers_from_the_regulars_gap(
    tmp_path: Path, database_url: str
) -> None:
    """A slow business: everyone's median gap (what a customer with too few orders is
    measured against) and the regular buyers' (which chose the horizon) are told apart."""
    imported(tmp_path, database_url, SLOW)
    text = flat(cli("score", cwd=tmp_path, url=database_url))
    everyone = re.search(
        r"A customer with too few orders for a rhythm of their own is measured against the "
        r"median gap of all customers, (\d+) days\.",
        text,
    )
    assert everyone is not None, text
    assert RHYTHM.search(text) is not None, text
    assert "typical gap" not in text, text


def test_an_empty_database_says_to_import_instead_of_a_typical_gap(
    tmp_path: Path, database_url: str
) -> None:
    assert cli_at("db", "upgrade", cwd=tmp_path, url=database_url).returncode == 0
    said = flat(cli("score", cwd=tmp_path, url=database_url))
    assert said == (
        "No customers yet, so nobody to score: import your customers and their orders first "
        "(reengage import customers FILE, then reengage import activities FILE)."
    ), said

    people = tmp_path / "customers.csv"
    people.write_text("customer_id,email\nC1,c1@example.com\nC2,c2@example.com\n")
    assert (
        cli_at("import", "customers", str(people), cwd=tmp_path, url=database_url).returncode == 0
    )
    said = flat(cli("score", cwd=tmp_path, url=database_url))
    assert said == (
        "2 customers but no orders yet, so nobody to score: import their orders first "
        "(reengage import activities FILE)."
    ), said
