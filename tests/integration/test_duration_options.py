"""Every command-line option that takes a duration reads it as a campaign file does."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_cli import cli

NOW = "2026-11-29T23:40:00+00:00"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    settings = {"REENGAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    assert cli("db", "upgrade", cwd=tmp_path, env=settings).returncode == 0
    return settings


def test_since_takes_minutes_as_a_campaign_step_does(tmp_path: Path, env: dict[str, str]) -> None:
    stats = cli("stats", "--since", "90min", cwd=tmp_path, env=env)
    assert stats.returncode == 0, stats.stderr
    assert "No customer has entered a campaign since" in stats.stdout
    causes = cli(
        "report", "causes", "--since", "30d", cwd=tmp_path, env={**env, "REENGAGE_NOW": NOW}
    )
    assert causes.returncode == 0, causes.stderr
    assert "0 calls since 2026-10-30 23:40 UTC" in causes.stdout  # the moment, not "30d"


@pytest.mark.parametrize(
    "args",
    [
        ("stats", "--since", "90m"),
        ("report", "causes", "--since", "90m"),
        ("score", "--horizon", "90m"),
    ],
)
def test_a_bare_m_is_refused_on_the_command_line_too(
    tmp_path: Path, env: dict[str, str], args: tuple[str, ...]
) -> None:
    refused = cli(*args, cwd=tmp_path, env=env)
    assert refused.returncode == 2
    assert "'90m' is ambiguous: write 90min for minutes or 30d for a month" in refused.stderr
