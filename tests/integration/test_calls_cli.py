"""The reps' commands as a person runs them: real processes on a filled database.

Every command runs on the clock ``REENGAGE_NOW`` pins: late on a Sunday evening in UTC,
when it is already Monday for Dana in Berlin and still Sunday afternoon for Sam in New York.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reengage.ingest import Kind, import_items
from reengage.store import Store
from tests.integration import digest_world as w
from tests.integration import inprocess
from tests.integration.test_cli import cli

pytestmark = pytest.mark.clock
NOW = datetime(2026, 11, 22, 23, 40, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    store = Store.open(database_url, upgrade=True)
    try:
        w.fill(store, NOW)
    finally:
        store.close()
    return {
        "REENGAGE_NOW": NOW.isoformat(),
        "REENGAGE_DATABASE_URL": database_url,
        "REENGAGE_CAMPAIGNS_DIR": str(w.ROOT / "campaigns"),
        "REENGAGE_TEMPLATES_DIR": str(w.ROOT / "templates"),
        "REENGAGE_SECRET_KEY": w.SECRET,
    }


def test_calls_list_shows_each_reps_clients_with_whom_to_ask_and_why(
    tmp_path: Path, env: dict[str, str]
) -> None:
    result = cli("calls", "list", "--rep", "R1", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Dana Reyes (R1)" in out
    for fact in ("Ana Li", "Maria Li", "+49 170 555 0101", "silent for 60 days", "Kim Chen"):
        assert fact in out, fact
    assert "Nora" not in out and "Hal" not in out  # do-not-contact; still buying
    assert "Sam Ortiz" not in out
    unknown = cli("calls", "list", "--rep", "R404", cwd=tmp_path, env=env)
    assert unknown.returncode == 1
    assert "no rep 'R404'; known reps: R1, R2" in unknown.stderr
    for blank in ("", "  "):  # `--rep "$REP"` with REP unset is a mistake, not "every rep"
        empty = cli("calls", "list", "--rep", blank, cwd=tmp_path, env=env)
        assert empty.returncode == 1
        assert "--rep is empty" in empty.stderr and "Dana" not in empty.stdout
        preview = cli("digest", "preview", "--rep", blank, cwd=tmp_path, env=env)
        assert preview.returncode == 1 and "--rep is empty" in preview.stderr


def test_calls_log_tells_the_rep_in_the_reps_own_language(
    tmp_path: Path, env: dict[str, str], database_url: str
) -> None:
    store = Store.open(database_url)
    try:
        dana = {**w.REPS[0], "locale": "zh-CN"}
        assert import_items(store, Kind.REPS, [dana], now=NOW, zone=ZoneInfo("UTC")).ok
    finally:
        store.close()
    result = cli(
        "calls", "log", "bakery", "--reached", "nobody", "--worth", "yes", "--next", "nothing",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "通话已记录。" in result.stdout and "The call is recorded" not in result.stdout


def test_calls_log_records_the_outcome_and_acts_on_it(
    tmp_path: Path, env: dict[str, str], database_url: str
) -> None:
    again = (NOW.astimezone(BERLIN).date() + timedelta(days=3)).isoformat()  # Dana's Thursday
    result = cli(
        "calls", "log", "bakery",
        "--reached", "decision_maker", "--contact", "Maria Li",
        "--reason", "delivery", "--note", "Two late deliveries before Easter",
        "--scope", "systemic", "--win-back", "A delivery date we keep",
        "--worth", "yes", "--next", "call_again", "--on", again,
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "The call is recorded." in result.stdout
    assert "They are on your list again on Thursday, November 26, 2026" in result.stdout
    listed = cli("calls", "list", "--rep", "R1", cwd=tmp_path, env=env).stdout
    assert "Ana Li" not in listed  # just called
    later = cli("calls", "list", "--rep", "R1", "--date", again, cwd=tmp_path, env=env).stdout
    assert "Ana Li" in later and "You asked to call again today" in later
    utc_day = (NOW.date() + timedelta(days=3)).isoformat()  # Wednesday: not the day Dana chose
    assert (
        "Ana Li"
        not in cli("calls", "list", "--rep", "R1", "--date", utc_day, cwd=tmp_path, env=env).stdout
    )
    causes = cli("report", "causes", cwd=tmp_path, env=env)
    assert causes.returncode == 0, causes.stderr
    assert "delivery" in causes.stdout and "Two late deliveries before Easter" in causes.stdout
    store = Store.open(database_url)
    try:
        [outcome] = store.calls.outcomes_since(None)
    finally:
        store.close()
    assert (outcome.reason, outcome.scope, outcome.source) == ("delivery", "systemic", "cli")


def test_calls_log_without_a_terminal_names_what_is_missing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    result = cli("calls", "log", "bakery", "--reached", "nobody", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "--worth is missing: one of yes, no, later" in result.stderr
    bad = cli(
        "calls", "log", "bakery", "--reached", "decision_maker", "--worth", "yes",
        "--next", "nothing", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "--reason: choose the main reason they stopped" in bad.stderr
    again = cli(
        "calls", "log", "bakery", "--reached", "nobody", "--worth", "yes",
        "--next", "call_again", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert again.returncode == 1  # named as this command's option, not the form's field
    assert "--on: choose the day to call again" in again.stderr, again.stderr
    nobody = cli("calls", "log", "nosuch", "--reached", "nobody", cwd=tmp_path, env=env)
    assert "no customer 'nosuch'" in nobody.stderr


def test_digest_preview_writes_the_exact_mail_and_sends_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    result = cli("digest", "preview", "--rep", "R1", "--out", "out", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    [eml] = (tmp_path / "out").glob("digest-R1-*.eml")
    raw = eml.read_bytes()
    assert b"To: Dana Reyes <dana@acme.example>" in raw
    html = next((tmp_path / "out").glob("digest-R1-*.html")).read_text()
    assert "Maria Li" in html and "/call/" in html
    bad = cli("digest", "preview", "--rep", "R1", "--date", "23/11", cwd=tmp_path, env=env)
    assert bad.returncode != 0 and "not a date like 2026-11-30" in bad.stderr


def test_digest_commands_show_the_working_days_and_send_nothing_on_a_day_off(
    tmp_path: Path, env: dict[str, str]
) -> None:
    env = {**env, "REENGAGE_DIGEST_SKIP_DATES": "2026-12-25,2026-12-26"}
    preview = cli("digest", "preview", "--rep", "R1", "--date", "2026-11-29", cwd=tmp_path, env=env)
    assert preview.returncode == 0, preview.stderr
    assert "working days: mon-fri, not 2026-12-25, 2026-12-26" in preview.stdout
    first = preview.stdout.splitlines()[0]  # on top, before anything about the list
    assert first.startswith("Sun 29 Nov 2026 is not a working day for Dana Reyes (R1): no "), first
    assert "no digest goes out" in first and "on the list of Mon 30 Nov 2026" in preview.stdout
    # Still Sunday afternoon for Sam in New York: sending by hand sends him nothing.
    sent = cli("digest", "send", "--rep", "R2", cwd=tmp_path, env=env)
    assert sent.returncode == 0, sent.stderr
    assert "not a working day (REENGAGE_DIGEST_DAYS" in sent.stdout
    assert "sent" not in sent.stdout.replace("digests:", "")


def test_calls_list_and_digest_preview_for_a_holiday_say_no_digest_goes_out_that_day(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """A Thursday that is a holiday: the list is still shown (a preview), under a note that
    the rep gets no digest that day; a working day has no such note."""
    env = {**env, "REENGAGE_DIGEST_SKIP_DATES": "2026-11-26,2026-11-27"}
    listed = cli("calls", "list", "--rep", "R1", "--date", "2026-11-26", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    note, title = listed.stdout.splitlines()[:2]
    assert note.startswith(
        "Thu 26 Nov 2026 is not a working day for Dana Reyes (R1): no digest "
        "goes out; what is due then is on the list of Mon 30 Nov 2026"
    ), note
    assert "Dana Reyes (R1) — Thu 26 Nov 2026" in title
    assert "Maria Li" in listed.stdout  # still shown, as a preview
    preview = cli(
        "digest",
        "preview",
        "--rep",
        "R1",
        "--date",
        "2026-11-26",
        "--out",
        "o",
        cwd=tmp_path,
        env=env,
    )
    assert preview.returncode == 0, preview.stderr
    assert preview.stdout.startswith("Thu 26 Nov 2026 is not a working day for Dana Reyes (R1)")
    working = cli("calls", "list", "--rep", "R1", "--date", "2026-11-25", cwd=tmp_path, env=env)
    assert "not a working day" not in working.stdout
    assert "Dana Reyes (R1) — Wed 25 Nov 2026" in working.stdout.splitlines()[0]


@pytest.mark.parametrize("columns", [80, 60])
def test_calls_list_in_a_narrow_terminal_never_cuts_a_phone_number(
    tmp_path: Path, env: dict[str, str], columns: int
) -> None:
    narrow = {**env, "COLUMNS": str(columns)}
    result = inprocess.cli("calls", "list", "--rep", "R1", cwd=tmp_path, env=narrow)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    table = [line for line in lines if line[:1] in "┏┃┡│├└"]
    assert table and max(len(line) for line in table) <= columns
    for phone in ("+49 170 555 0101", "+49 40 555 0199"):  # whole, on one line: dialable
        assert any(phone in line for line in lines), phone
