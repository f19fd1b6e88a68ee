"""Engines for SQLite (embedded default) and PostgreSQL (scale-out), set up the same way.

SQLite gets WAL, foreign keys and a busy timeout so a CLI import and the daemon can share
the file; PostgreSQL gets a checked connection pool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from reengage.errors import DatabaseUnreachable, StoreError


def create_engine(url: str, *, connect_timeout: int | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url``; a SQLite file's folder is created if missing. A PostgreSQL
    server that does not answer a new connection within ``connect_timeout`` seconds
    (default :data:`CONNECT_TIMEOUT_S`; ``REENGAGE_DATABASE_CONNECT_TIMEOUT``) is an error."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"REENGAGE_DATABASE_URL: {url!r} is not a database URL") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    waited = connect_timeout or CONNECT_TIMEOUT_S
    engine = sa.create_engine(
        parsed,
        pool_pre_ping=True,
        # A server that does not answer is an error in seconds, not a hang; so is a network
        # path that died under an open connection (keepalives, and data unacknowledged for a
        # minute), which would otherwise wait for the kernel's TCP timeout (~15 minutes).
        connect_args={
            "connect_timeout": waited,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
            "tcp_user_timeout": 60_000,
        },
        **kwargs,
    )
    sa.event.listen(engine, "connect", _postgresql_timeouts)
    _CONNECT_TIMEOUTS[engine] = waited
    return engine


# A command against a server that is down or a port that never answers ends in seconds;
# libpq's own default is to wait for ever, the kernel's TCP timeout about two minutes.
CONNECT_TIMEOUT_S = 5
_CONNECT_TIMEOUTS: WeakKeyDictionary[Engine, int] = WeakKeyDictionary()  # to say how long
# No statement of ours runs this long; a plan gone wrong is stopped and reported, and a lock
# held by a stuck session cannot stall every worker for ever.
STATEMENT_TIMEOUT_S = 600
LOCK_TIMEOUT_S = 60


def _postgresql_timeouts(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT_S}s'")
        cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT_S}s'")
    dbapi_connection.commit()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (the web app, `reengage stats`) work while the daemon writes;
    # NORMAL sync is durable across application crashes, which is what WAL needs.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: big imports keep indexes in memory
    cursor.close()


def absent_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL when it does not exist (connecting would create it, empty);
    None for any other database."""
    try:
        parsed = make_url(url)
    except ArgumentError:  # a malformed URL: the connection check says what is wrong
        return None
    name = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or name in ("", ":memory:"):
        return None
    if name.startswith("file:"):  # a URI filename (?uri=true): sqlite says what it means
        return None
    path = Path(name)
    return None if path.exists() else path


def check_connection(engine: Engine) -> None:
    """Connect once, so a wrong URL or a stopped server is reported before any work: as
    :class:`DatabaseUnreachable`, naming the URL (without its password) and the fix."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise DatabaseUnreachable(unreachable_message(engine, exc)) from exc


def unreachable_message(engine: Engine, exc: BaseException) -> str:
    """Why no connection was made, the URL without its password, and the fix."""
    where = engine.url.render_as_string(hide_password=True)
    why = _first_line(exc)
    said = why.lower()
    if "timeout" in said or "timed out" in said:
        waited = _CONNECT_TIMEOUTS.get(engine, CONNECT_TIMEOUT_S)
        return (
            f"cannot reach the database at {where}: no answer within {waited} s ({why}) — "
            "check the host and port in REENGAGE_DATABASE_URL and that the server is up and "
            "answering there (a slow network: raise REENGAGE_DATABASE_CONNECT_TIMEOUT)"
        )
    if "refused" in said or "translate host name" in said or "unreachable" in said:
        return (
            f"cannot reach the database at {where}: nothing answers there ({why}) — start "
            "the server, or correct the host and port in REENGAGE_DATABASE_URL"
        )
    return (
        f"cannot connect to the database at {where}: {why} — check REENGAGE_DATABASE_URL "
        "(user, password, database name) and that the server is running"
    )


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def upsert_insert(dialect: str, table: sa.Table) -> Any:
    """An INSERT that knows ON CONFLICT for this dialect (both speak the same clause)."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def insert_once(conn: Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """Insert once per ``dedupe_key`` (always, without one); whether the row went in.
    RETURNING says so: psycopg reports no rowcount for this statement."""
    if values["dedupe_key"] is None:
        conn.execute(table.insert().values(**values))
        return True
    insert = upsert_insert(conn.dialect.name, table).values(**values)
    query = insert.on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(table.c.id)
    return conn.execute(query).first() is not None
