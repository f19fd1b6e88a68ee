"""The in-process runner shows what the installed script shows, and leaves nothing behind."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import sys
from pathlib import Path

import pytest
import structlog

from reengage import timeutil
from tests.integration import inprocess
from tests.integration.test_cli import script


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--help"], id="help, as wide as COLUMNS"),
        pytest.param(["stats", "--format", "xml"], id="usage error naming the program"),
        pytest.param(["db", "upgrade"], id="configuration error, one line"),
    ],
)
def test_a_command_in_process_shows_what_the_installed_script_shows(
    tmp_path: Path, args: list[str]
) -> None:
    env = {"REENGAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "COLUMNS": "200"}
    if args == ["db", "upgrade"]:
        env["REENGAGE_TIMEZONE"] = "Mars/Olympus"
    here = inprocess.cli(*args, cwd=tmp_path, env=env)
    there = script(*args, cwd=tmp_path, env=env)
    assert (here.returncode, here.stdout, here.stderr) == (
        there.returncode,
        there.stdout,
        there.stderr,
    )


def test_a_command_leaves_the_test_process_as_it_found_it(tmp_path: Path) -> None:
    command_line = importlib.import_module("reengage.cli.app")
    (tmp_path / ".env").write_text(f"REENGAGE_DATABASE_URL=sqlite:///{tmp_path / 'env.db'}\n")
    environ, cwd = dict(os.environ), os.getcwd()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    structlog_config = structlog.get_config()
    hook, sigterm = sys.excepthook, signal.getsignal(signal.SIGTERM)
    policy = asyncio.get_event_loop_policy()
    alembic = logging.getLogger("alembic").level

    done = inprocess.cli(
        "db",
        "upgrade",
        cwd=tmp_path,
        env={"REENGAGE_NOW": "2026-11-29T23:40:00+00:00", "REENGAGE_LOG_LEVEL": "debug"},
    )

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "env.db").exists()  # it read the .env in its folder
    assert dict(os.environ) == environ and os.getcwd() == cwd
    assert timeutil._Origin.pinned is None  # its REENGAGE_NOW pinned its clock, not ours
    assert command_line._State.settings is None  # the next command reads its own settings
    assert (list(root.handlers), root.level) == (handlers, level)
    assert structlog.get_config() == structlog_config
    assert (sys.excepthook, signal.getsignal(signal.SIGTERM)) == (hook, sigterm)
    assert asyncio.get_event_loop_policy() is policy
    assert logging.getLogger("alembic").level == alembic  # configure_logging set it

    # Another folder, another .env: nothing of the first command's settings is left.
    other = tmp_path / "other"
    other.mkdir()
    refused = inprocess.cli("db", "upgrade", cwd=other, env={"REENGAGE_TIMEZONE": "Mars/Olympus"})
    assert refused.returncode == 2
    assert refused.stderr.startswith("configuration error: REENGAGE_TIMEZONE")
    assert not (other / "env.db").exists()


def test_an_uncaught_error_is_a_traceback_on_stderr_and_exit_1(tmp_path: Path) -> None:
    def boom() -> None:
        raise RuntimeError("not expected")

    command_line = importlib.import_module("reengage.cli.app")
    original = command_line._settings
    command_line._settings = boom  # type: ignore[assignment]  # the root callback calls it
    try:
        done = inprocess.cli("stats", cwd=tmp_path)
    finally:
        command_line._settings = original  # type: ignore[assignment]
    assert done.returncode == 1
    assert done.stderr.startswith("Traceback (most recent call last):")
    assert done.stderr.rstrip().endswith("RuntimeError: not expected")
