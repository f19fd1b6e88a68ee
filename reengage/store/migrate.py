"""Alembic, driven from code: ``reengage db upgrade``, the demo and the tests all use this.

The migration scripts live beside this module; no ``alembic.ini`` is needed.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from reengage.errors import MigrationError

_SCRIPTS = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to ``engine`` (env.py reuses its connection)."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    try:
        command.upgrade(alembic_config(engine), revision)
    except SQLAlchemyError as exc:
        raise MigrationError(f"migration to {revision} failed: {exc}") from exc


def downgrade(engine: Engine, revision: str) -> None:
    """Revert migrations down to ``revision`` (``base`` empties the schema)."""
    command.downgrade(alembic_config(engine), revision)


def head_revision() -> str:
    """The newest migration this code ships."""
    head = ScriptDirectory.from_config(alembic_config_no_engine()).get_current_head()
    assert head is not None, "no migrations shipped"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def require_current(engine: Engine) -> None:
    """Stop with the fix when the database is not at this code's schema."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise MigrationError(
            f"database schema is at {current or 'nothing'}, this reengage needs {head}: "
            "run `reengage db upgrade`"
        )


def alembic_config_no_engine() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config
