"""Shared fixtures: a migrated database on every backend under test.

SQLite always runs. PostgreSQL runs when REENGAGE_TEST_DATABASE_URL names a server; each
test gets a schema of its own there, so tests never see each other's rows. In CI
(CI=true) a missing URL is an error, never a silent skip.

REENGAGE_TEST_CLOCK (an aware ISO moment, e.g. 2026-11-29T23:40:00+00:00) runs the whole
session as if it had started at that moment: the process clock travels there (time-machine,
ticking on) and every reengage subprocess started through :func:`child_env` gets
``REENGAGE_NOW`` at the same moment (as does every command run in the test process by
``tests/integration/inprocess.py``, which uses it too), so a test that reads the real clock
behaves as it would at that real hour. ``.ci/test`` runs the clock-sensitive tests this way.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine

from reengage.store import Store

PG_URL = os.environ.get("REENGAGE_TEST_DATABASE_URL", "").strip()
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
TEST_CLOCK = os.environ.get("REENGAGE_TEST_CLOCK", "").strip()
# For a test of how a page looks (its widths, its languages) rather than of what it stores:
# the page is the same whichever store served its data, so it runs on SQLite only; what the
# same pages record is tested on both stores by their other tests.
ON_SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class _Travel:
    # The session's trip to REENGAGE_TEST_CLOCK, started before collection (module-level
    # clock reads count too) and stopped when pytest unconfigures.
    active: time_machine.travel | None = None


def pinned_moment() -> datetime | None:
    """The moment REENGAGE_TEST_CLOCK pins the session to, or None on the real clock."""
    if not TEST_CLOCK:
        return None
    try:
        moment = datetime.fromisoformat(TEST_CLOCK)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise pytest.UsageError(
            f"REENGAGE_TEST_CLOCK={TEST_CLOCK!r} is not an aware moment like "
            "2026-11-29T23:40:00+00:00"
        )
    return moment.astimezone(UTC)


def child_env(**settings: str) -> dict[str, str]:
    """The environment for a ``reengage`` subprocess: none of the caller's REENGAGE_ settings,
    then ``settings``. On a pinned session clock the child's clock starts where ours is now."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REENGAGE_")}
    if TEST_CLOCK:
        env["REENGAGE_NOW"] = datetime.now(UTC).isoformat()  # the travelled clock
    env.update(settings)
    return env


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and not PG_URL:
        raise pytest.UsageError(
            "CI=true but REENGAGE_TEST_DATABASE_URL is not set: the PostgreSQL half of the "
            "suite must run in CI (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    moment = pinned_moment()
    if moment is not None and _Travel.active is None:
        _Travel.active = time_machine.travel(moment, tick=True)
        _Travel.active.start()
        # Subprocesses that inherit our environment start their clocks there too.
        os.environ["REENGAGE_NOW"] = moment.isoformat()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules with a test marked ``long`` run first, each kept whole (its module fixtures
    are built once), so in a parallel run they start at once rather than hold up its end."""
    first = {item.path for item in items if item.get_closest_marker("long")}
    items.sort(key=lambda item: item.path not in first)  # stable: the order otherwise kept


def pytest_unconfigure(config: pytest.Config) -> None:
    if _Travel.active is not None:
        _Travel.active.stop()
        _Travel.active = None


def pytest_report_header(config: pytest.Config) -> str | None:
    moment = pinned_moment()
    return None if moment is None else f"clock pinned: the session starts at {moment.isoformat()}"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    if not PG_URL:
        pytest.skip("REENGAGE_TEST_DATABASE_URL is not set; PostgreSQL half not run locally")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A store on a database migrated to head through the real migrations."""
    opened = Store.open(database_url, upgrade=True)
    yield opened
    opened.close()
