"""The `reengage` command as a person runs it: real files, real databases.

The commands run in the test process (``inprocess.py``: what a subprocess would show,
without its second of start-up); the first test runs the installed ``reengage`` script as
a process of its own, so the packaging is tested too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child_env
from tests.integration import inprocess

pytestmark = pytest.mark.clock  # each command reads the process clock
REENGAGE = str(Path(sys.executable).with_name("reengage"))


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> inprocess.Result:
    """``reengage *args`` run in this process, on a console 200 columns wide."""
    return inprocess.cli(*args, cwd=cwd, env={**(env or {}), "COLUMNS": "200"})


def script(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed ``reengage`` script as a process of its own, 200 columns wide: for the
    daemon (``run``, ``demo``) and the smoke test of the script itself."""
    clean = child_env(**(env or {}))
    clean["COLUMNS"] = "200"
    return subprocess.run(
        [REENGAGE, *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_import_reports_bad_rows_exits_nonzero_and_reimport_changes_nothing(
    tmp_path: Path, database_url: str
) -> None:
    """The smoke test of the installed script: a separate process, its exit codes, its
    stdout and stderr."""
    env = {"REENGAGE_DATABASE_URL": database_url}
    assert script("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    path = tmp_path / "customers.csv"
    path.write_text("customer_id,email\nc1,a@example.com\nc2,nope\nc3,c@example.com\n")

    first = script("import", "customers", str(path), cwd=tmp_path, env=env)
    assert first.returncode == 1
    assert f"{path}:3: email: 'nope' is not an email address" in first.stderr
    assert "2 imported, 0 updated, 0 unchanged, 1 skipped" in first.stdout

    path.write_text("customer_id,email\nc1,a@example.com\nc3,c@example.com\n")
    second = script("import", "customers", str(path), cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr
    assert "0 imported, 0 updated, 2 unchanged, 0 skipped" in second.stdout


def test_commands_refuse_an_unmigrated_database_and_say_what_to_run(tmp_path: Path) -> None:
    path = tmp_path / "reps.csv"
    path.write_text("rep_id,email\nr1,r@example.com\n")
    result = cli("import", "reps", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert "run `reengage db upgrade`" in result.stderr


def test_malformed_setting_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    result = cli("db", "upgrade", cwd=tmp_path, env={"REENGAGE_TIMEZONE": "Mars/Olympus"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: REENGAGE_TIMEZONE: 'Mars/Olympus' is not an IANA time zone like "
        "Europe/Berlin"
    ]


def test_dotenv_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"REENGAGE_DATABASE_URL=sqlite:///{tmp_path / 'fromenv.db'}\n")
    assert cli("db", "upgrade", cwd=tmp_path).returncode == 0
    assert (tmp_path / "fromenv.db").exists()


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    env = {"REENGAGE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    result = cli("db", "upgrade", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "cannot reach the database at postgresql+psycopg://nobody@127.0.0.1:1/none" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("flag", [[], ["--dry-run"]])
def test_seed_imports_or_writes_files(tmp_path: Path, flag: list[str]) -> None:
    env = {"REENGAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    assert cli("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    if flag:
        result = cli(
            "seed", "--customers", "40", "--out", str(tmp_path / "d"), cwd=tmp_path, env=env
        )
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "d" / "activities.csv").exists()
        dry = cli(
            "import", "reps", str(tmp_path / "d" / "reps.csv"), "--dry-run", cwd=tmp_path, env=env
        )
        assert "dry run, nothing written" in dry.stdout
        return
    result = cli("seed", "--customers", "40", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "customers: 40 imported" in result.stdout
    shown = cli("customers", "show", "C000002", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "rhythm" in shown.stdout


def test_an_output_path_that_cannot_be_written_is_one_line_naming_it(tmp_path: Path) -> None:
    """A wrong --out or --folder (a folder that does not exist, a file where a folder is
    needed) is one line naming the path and what to do, for every command that writes."""
    env = {
        "REENGAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "REENGAGE_TEMPLATES_DIR": str(Path(__file__).resolve().parents[2] / "templates"),
    }
    assert cli("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    assert cli("seed", "--customers", "30", cwd=tmp_path, env=env).returncode == 0
    (tmp_path / "afile").write_text("already here")
    missing = str(tmp_path / "nowhere" / "x.csv")
    for args, path in (
        (["score", "--out", missing], missing),
        (["score", "--as-of", "2026-06-01", "--out", missing], missing),
        (["digest", "preview", "--rep", "R001", "--out", "afile"], "afile"),
        (["seed", "--customers", "5", "--out", "afile"], "afile"),
        (["demo", "--customers", "10", "--folder", "afile"], "afile"),
    ):
        result = cli(*args, cwd=tmp_path, env=env)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, (args, result.stderr)
        line = result.stderr.strip()
        assert line.startswith(f"error: cannot use {path}") and "(" in line, (args, line)
        assert "reengage demo" not in result.stdout, "refused before it starts"
    assert (tmp_path / "afile").read_text() == "already here"


def test_score_as_of_writes_every_measure_and_backtest_reports_against_recency(
    tmp_path: Path,
) -> None:
    import csv

    # The data's "now" is the clock's: a backtest needs its horizon to have passed.
    env = {
        "REENGAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "REENGAGE_NOW": "2026-11-01T12:00:00+00:00",
    }
    assert cli("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    seeded = cli("seed", "--customers", "400", "--now", "2026-11-01", cwd=tmp_path, env=env)
    assert seeded.returncode == 0, seeded.stderr

    out = tmp_path / "scores.csv"
    scored = cli("score", "--as-of", "2026-06-01", "--out", str(out), cwd=tmp_path, env=env)
    assert scored.returncode == 0, scored.stderr
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert {
        "customer_id",
        "days_silent",
        "expected_gap_days",
        "lapse_ratio",
        "lapse_score",
        "count_ratio",
        "aov_ratio",
        "margin_ratio",
        "value_at_risk",
        "priority",
        "why",
    } <= set(rows[0])
    assert all(0.0 <= float(r["lapse_score"]) <= 1.0 for r in rows)
    # as of June, nobody can have been silent for less than the time since their last
    # activity before June: later activity is ignored
    assert min(float(r["days_silent"]) for r in rows) >= 0.0
    assert any(r["why"].startswith("Usually orders every") for r in rows)

    backtest = cli(
        "score", "--backtest", "--as-of", "2026-06-01", "--horizon", "90d", cwd=tmp_path, env=env
    )
    assert backtest.returncode == 0, backtest.stderr
    assert "plain recency (days silent)" in backtest.stdout
    assert "Calibration of lapse_score" in backtest.stdout
    assert "precision, top 10%" in backtest.stdout

    fitted = cli("score", "--fit", cwd=tmp_path, env=env)
    assert fitted.returncode == 0, fitted.stderr
    assert "saved: detection" in fitted.stdout
    lapsed = cli("customers", "lapsed", "--min-score", "0.9", "--limit", "5", cwd=tmp_path, env=env)
    assert lapsed.returncode == 0, lapsed.stderr
    assert "customers at lapse score ≥ 0.90" in lapsed.stdout


def test_backtest_without_as_of_says_what_is_missing(tmp_path: Path) -> None:
    env = {"REENGAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    assert cli("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    result = cli("score", "--backtest", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "--backtest needs --as-of" in result.stderr
    # A horizon that ends after today has no outcome to check against: refused, not made up.
    pinned = {**env, "REENGAGE_NOW": "2026-11-29T23:40:00+00:00"}
    future = cli(
        "score", "--backtest", "--as-of", "2026-10-01", "--horizon", "90d", cwd=tmp_path, env=pinned
    )
    assert future.returncode == 2
    assert "which has not come yet" in future.stderr
    assert "2026-08-31" in future.stderr, future.stderr  # the latest --as-of that works


def test_validate_preview_and_simulate_from_the_terminal(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {
        "REENGAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "REENGAGE_CAMPAIGNS_DIR": str(root / "campaigns"),
        "REENGAGE_TEMPLATES_DIR": str(root / "templates"),
    }
    ok = cli("validate", cwd=tmp_path, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "3 campaign(s) valid, 0 problem(s)" in ok.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "id: x\nname: X\nfrom: a@example.com\nsteps:\n  - key: a\n    after: 1x\n"
        "    subject: s\n    template: t.html.j2\n"
    )
    failed = cli("validate", str(bad), cwd=tmp_path, env=env)
    assert failed.returncode == 1
    assert "bad.yaml:6: steps[0].after: '1x' is not a duration like 7d or 36h" in failed.stderr

    assert cli("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    assert cli("seed", "--customers", "60", cwd=tmp_path, env=env).returncode == 0
    shown = cli(
        "preview",
        "habit-lapsed-tips",
        "tip-1",
        "--customer",
        "C000002",
        "--out",
        str(tmp_path / "p"),
        cwd=tmp_path,
        env=env,
    )
    assert shown.returncode == 0, shown.stderr
    assert "Subject: A 5-minute tip to get more from" in shown.stdout
    assert (tmp_path / "p" / "habit-lapsed-tips.tip-1.C000002.eml").exists()
    missing = cli(
        "preview", "habit-lapsed-tips", "nope", "--customer", "C000002", cwd=tmp_path, env=env
    )
    assert missing.returncode == 1
    assert "has no mail step 'nope'" in missing.stderr

    plan = cli("simulate", "--days", "30", cwd=tmp_path, env=env)
    assert plan.returncode == 0, plan.stderr
    assert "Plan for the next 30 days (nothing is sent)" in plan.stdout


def test_customers_show_dates_activity_as_it_was_imported(tmp_path: Path) -> None:
    """An order imported as 1 June in the business's zone shows as 1 June, not as the UTC
    date before it; a birthday imported without its year shows without one."""
    env = {
        "REENGAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "REENGAGE_TIMEZONE": "Europe/Berlin",
        "REENGAGE_NOW": "2026-11-29T23:40:00+00:00",
    }
    assert cli("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    (tmp_path / "c.csv").write_text(
        "customer_id,email,birthday,important_dates\nc1,a@example.com,02-29,signed=2019-05-06\n"
    )
    (tmp_path / "o.csv").write_text("customer_id,occurred_at,amount\nc1,2026-06-01,20\n")
    assert cli("import", "customers", "c.csv", cwd=tmp_path, env=env).returncode == 0
    assert cli("import", "activities", "o.csv", cwd=tmp_path, env=env).returncode == 0
    shown = cli("customers", "show", "c1", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "2026-06-01 order" in shown.stdout, shown.stdout
    assert "signed 2019-05-06, birthday 29 Feb, yearly" in shown.stdout, shown.stdout
    assert "2000" not in shown.stdout


def test_doctor_finds_a_spool_folder_that_could_not_keep_results(tmp_path: Path) -> None:
    """A spool that cannot be written is found by `doctor` now, not during an outage when
    the results it should have kept become unknown."""
    env = {
        "REENGAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "REENGAGE_SECRET_KEY": "d" * 40,
        "REENGAGE_SPOOL_DIR": str(tmp_path / "a-file"),
    }
    (tmp_path / "a-file").write_text("not a folder")
    assert cli("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    doctor = cli("doctor", cwd=tmp_path, env=env)
    assert doctor.returncode != 0
    assert "FAIL spool: REENGAGE_SPOOL_DIR" in doctor.stdout, doctor.stdout
    env["REENGAGE_SPOOL_DIR"] = str(tmp_path / "spool")
    assert "ok   spool:" in cli("doctor", cwd=tmp_path, env=env).stdout


def test_a_status_sends_does_not_know_is_a_usage_error_naming_the_choices(tmp_path: Path) -> None:
    env = {"REENGAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    assert cli("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    for args in (("list",), ("resolve", "skip", "--all")):
        result = cli("sends", *args, "--status", "weird", cwd=tmp_path, env=env)
        assert result.returncode == 2, result.stderr  # as every other bad option
        assert "--status" in result.stderr and "unknown, failed" in result.stderr


def test_doctor_shows_the_working_days_and_only_the_holidays_still_ahead(tmp_path: Path) -> None:
    """`doctor` reads the day at the edge (REENGAGE_NOW pins it): a holiday already past is
    not worth showing, one still ahead is; late evening UTC on 24 December is still the
    24th in UTC, so Christmas is ahead."""
    env = {
        "REENGAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "REENGAGE_SECRET_KEY": "d" * 40,
        "REENGAGE_DIGEST_DAYS": "mon-fri",
        "REENGAGE_DIGEST_SKIP_DATES": "2026-01-01,2026-12-25,2027-01-01",
    }
    assert cli("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    late = cli("doctor", cwd=tmp_path, env={**env, "REENGAGE_NOW": "2026-12-24T23:40:00+00:00"})
    assert "working days: mon-fri, not 2026-12-25, 2027-01-01 (" in late.stdout, late.stdout
    after = cli("doctor", cwd=tmp_path, env={**env, "REENGAGE_NOW": "2026-12-26T08:00:00+00:00"})
    assert "working days: mon-fri, not 2027-01-01 (" in after.stdout, after.stdout


def test_doctor_names_a_database_file_that_is_not_there_and_does_not_create_it(
    tmp_path: Path,
) -> None:
    """A misspelt SQLite path is a finding: connecting to it would create an empty file and
    call the database reachable, while the daemon's data sits elsewhere."""
    typo = tmp_path / "reengaeg.db"
    env = {"REENGAGE_DATABASE_URL": f"sqlite:///{typo}", "REENGAGE_SECRET_KEY": "d" * 40}
    doctor = cli("doctor", cwd=tmp_path, env=env)
    assert doctor.returncode != 0
    assert f"FAIL database: no database file at {typo}: `reengage db upgrade` creates it" in (
        doctor.stdout
    ), doctor.stdout
    assert not typo.exists()
    assert cli("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    assert "ok   database: reachable" in cli("doctor", cwd=tmp_path, env=env).stdout


def test_doctor_changes_nothing_on_disk_and_names_a_dkim_key_it_cannot_read(
    tmp_path: Path,
) -> None:
    """`doctor` is safe to run anywhere: a spool folder, a database folder that are not
    there stay not there; an unreadable DKIM key is one FAIL line among the others, and the
    campaigns are still checked."""
    env = {
        "REENGAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'nodir' / 'x.db'}",
        "REENGAGE_SPOOL_DIR": str(tmp_path / "deep" / "a" / "spool"),
        "REENGAGE_DKIM_SELECTOR": "s1",
        "REENGAGE_DKIM_DOMAIN": "acme.example",
        "REENGAGE_DKIM_PRIVATE_KEY_FILE": str(tmp_path / "missing.pem"),
    }
    doctor = cli("doctor", cwd=tmp_path, env=env)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert "FAIL DKIM: REENGAGE_DKIM_PRIVATE_KEY_FILE: cannot read" in doctor.stdout
    assert "FAIL secret key: REENGAGE_SECRET_KEY is not set: " in doctor.stdout
    assert "secrets.token_urlsafe" in doctor.stdout
    assert "campaigns:" in doctor.stdout, doctor.stdout
    assert "ok   spool:" in doctor.stdout, doctor.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == []
