"""Shared fixtures: a migrated database on every backend under test.

SQLite always runs. PostgreSQL runs when REENGAGE_TEST_DATABASE_URL names a server; each
test gets a schema of its own there, so tests never see each other's rows. In CI
(CI=true) a missing URL is an error, never a silent skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from reengage.store import Store

PG_URL = os.environ.get("REENGAGE_TEST_DATABASE_URL", "").strip()
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and not PG_URL:
        raise pytest.UsageError(
            "CI=true but REENGAGE_TEST_DATABASE_URL is not set: the PostgreSQL half of the "
            "suite must run in CI (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )


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
