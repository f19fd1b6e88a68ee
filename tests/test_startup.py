"""`reengage --help` starts without the heavy libraries; the lazy command groups still work.

What is imported is behaviour (how long a person waits for help); how long it takes is
measured by ``bench/startup.py``, never asserted here.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# Libraries that cost hundredths to tenths of a second each; `--help` needs none of them.
HEAVY = (
    "aiosmtpd",
    "aiosmtplib",
    "alembic",
    "apscheduler",
    "httpx",
    "jinja2",
    "numpy",
    "pydantic",
    "sqlalchemy",
    "sqlmodel",
    "starlette",
    "structlog",
    "uvicorn",
    "reengage.demo",
    "reengage.models",
    "reengage.store",
    "reengage.web",
)

PROBE = """
import sys
sys.argv = ["reengage", *sys.argv[1:]]
from reengage.cli import main
try:
    main()
except SystemExit:
    pass
print("\\n".join(sorted(sys.modules)), file=sys.stderr)
"""


def _modules_after(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True
    )
    return set(done.stderr.split())


def _heavy(loaded: set[str], heavy: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in heavy))


def test_help_imports_no_heavy_library() -> None:
    loaded = _modules_after("--help")
    assert "reengage.cli" in loaded
    assert _heavy(loaded, HEAVY) == []


def test_a_command_starts_with_only_the_settings_and_logging() -> None:
    # Every command reads the settings and sets up logging first (pydantic, structlog);
    # what the command itself needs comes when it runs.
    loaded = _modules_after("doctor", "--help")
    assert "reengage.config" in loaded
    assert _heavy(loaded, tuple(h for h in HEAVY if h not in ("pydantic", "structlog"))) == []


def test_help_lists_every_group_without_reading_its_commands() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reengage", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "100", "PATH": ""},
    )
    for group in ("calls", "digest", "report", "sends", "inbound", "db", "import", "customers"):
        assert f"\n  {group} " in done.stdout


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("calls", "--help"), ("list", "log")),
        (("digest", "--help"), ("preview", "send")),
        (("report", "--help"), ("causes",)),
        (("sends", "--help"), ("list", "resolve", "retry")),
        (("calls", "log", "--help"), ("--reached", "someone_else", "--next")),
        (("sends", "resolve", "--help"), ("sent", "resend", "skip")),
    ],
)
def test_lazy_groups_read_their_commands_when_asked(
    args: tuple[str, ...], shown: tuple[str, ...]
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reengage", *args],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "200", "PATH": ""},
    )
    for word in shown:
        assert word in done.stdout


def test_an_unknown_command_in_a_lazy_group_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reengage", "sends", "nope"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "No such command 'nope'" in done.stderr
