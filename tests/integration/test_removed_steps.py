"""A step renamed or removed while customers wait at it: `validate` and `doctor` say so
before the daemon ends their sequences (exit reason ``step_removed``)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reengage.store import Store
from reengage.store.enrollments import NewEnrollment
from tests.integration.test_cli import cli

pytestmark = pytest.mark.clock  # each command reads the process clock
ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _world(tmp_path: Path, url: str) -> dict[str, str]:
    """A copy of the shipped campaigns, a database with 60 customers, three of them waiting
    at habit-lapsed-tips' step tip-2 and one at tip-1."""
    shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns")
    env = {
        "REENGAGE_DATABASE_URL": url,
        "REENGAGE_CAMPAIGNS_DIR": str(tmp_path / "campaigns"),
        "REENGAGE_TEMPLATES_DIR": str(ROOT / "templates"),
        "REENGAGE_SECRET_KEY": "d" * 40,
    }
    assert cli("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    assert cli("seed", "--customers", "60", cwd=tmp_path, env=env).returncode == 0
    store = Store.open(url)
    try:
        ids = store.customers.customer_ids([f"C{i:06d}" for i in range(1, 5)])
        keys = ["tip-2", "tip-2", "tip-2", "tip-1"]
        store.sending.enroll(
            [
                NewEnrollment(cid, "habit-lapsed-tips", False, key, NOW + timedelta(days=3))
                for cid, key in zip(sorted(ids.values()), keys, strict=True)
            ],
            NOW,
        )
    finally:
        store.close()
    return env


def _rename(campaigns: Path, old: str, new: str) -> None:
    path = campaigns / "habit-lapsed-tips.yaml"
    text = path.read_text(encoding="utf-8")
    assert f"key: {old}\n" in text
    path.write_text(text.replace(f"key: {old}\n", f"key: {new}\n"), encoding="utf-8")


def test_validate_and_doctor_warn_that_renaming_a_step_ends_the_sequences_waiting_at_it(
    tmp_path: Path, database_url: str
) -> None:
    env = _world(tmp_path, database_url)
    before = cli("validate", cwd=tmp_path, env=env)
    assert before.returncode == 0, before.stderr
    assert "running enrollment" not in before.stderr + before.stdout

    _rename(tmp_path / "campaigns", "tip-2", "tip-two")
    after = cli("validate", cwd=tmp_path, env=env)
    assert after.returncode == 0, after.stderr  # a warning: the file itself is fine
    warning = next(line for line in after.stderr.splitlines() if "tip-2" in line)
    assert warning.startswith("campaigns/habit-lapsed-tips.yaml:16: "), warning
    assert "warning: steps: 3 running enrollment(s) wait at step 'tip-2'" in warning
    assert "habit-lapsed-tips no longer has" in warning
    assert "ends them (exit reason step_removed)" in warning
    assert "keeps them out of habit-lapsed-tips for 90 days" in warning
    assert "if you renamed it to 'tip-two', rename it back to 'tip-2'" in warning
    assert "1 warning(s)" in after.stdout, after.stdout
    # The customer waiting at tip-1 goes on to tip-two: nothing to warn about.
    assert "tip-1" not in warning

    doctor = cli("doctor", cwd=tmp_path, env=env)
    assert "campaigns: 3 valid, 0 problem(s), 1 warning(s)" in doctor.stdout, doctor.stdout
    assert "3 running enrollment(s) wait at step 'tip-2'" in doctor.stdout, doctor.stdout

    _rename(tmp_path / "campaigns", "tip-two", "checklist")  # not a name like the old one
    other = cli("validate", cwd=tmp_path, env=env)
    assert "give the step that replaces it the key 'tip-2'" in other.stderr, other.stderr

    _rename(tmp_path / "campaigns", "checklist", "tip-2")
    back = cli("validate", cwd=tmp_path, env=env)
    assert "running enrollment" not in back.stderr + back.stdout


def test_validate_warns_that_a_campaign_file_removed_or_its_id_changed_ends_its_sequences(
    tmp_path: Path,
) -> None:
    env = _world(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    path = tmp_path / "campaigns" / "habit-lapsed-tips.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("id: habit-lapsed-tips\n", "id: habit-tips\n"), encoding="utf-8")
    changed = cli("validate", cwd=tmp_path, env=env)
    assert changed.returncode == 0, changed.stderr
    assert (
        f"{tmp_path / 'campaigns'}: warning: 4 running enrollment(s) are in campaign "
        "'habit-lapsed-tips', which no file here has any more: the daemon's next pass ends "
        "them (exit reason campaign_removed)"
    ) in changed.stderr, changed.stderr
    assert "its `id: habit-lapsed-tips` if you changed the id" in changed.stderr
    one_file = cli("validate", str(path), cwd=tmp_path, env=env)  # not the whole folder
    assert "campaign_removed" not in one_file.stderr
    # A file that does not load holds its sequences (the daemon waits for the fix): no warning.
    (tmp_path / "campaigns" / "broken.yaml").write_text("id: [\n", encoding="utf-8")
    broken = cli("validate", cwd=tmp_path, env=env)
    assert broken.returncode == 1 and "campaign_removed" not in broken.stderr
    path.unlink()
    (tmp_path / "campaigns" / "broken.yaml").unlink()
    doctor = cli("doctor", cwd=tmp_path, env=env)
    assert "4 running enrollment(s) are in campaign 'habit-lapsed-tips'" in doctor.stdout


def test_validate_without_a_database_says_it_could_not_check_the_running_sequences(
    tmp_path: Path,
) -> None:
    env = {
        "REENGAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'none.sqlite'}",
        "REENGAGE_CAMPAIGNS_DIR": str(ROOT / "campaigns"),
        "REENGAGE_TEMPLATES_DIR": str(ROOT / "templates"),
    }
    result = cli("validate", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "note: running enrollments not checked against these steps (no database file at" in (
        result.stdout
    ), result.stdout
    assert not (tmp_path / "none.sqlite").exists()  # looking did not create it
