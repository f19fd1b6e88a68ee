"""Migrations take an empty database of each kind to head, and back."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from reengage.errors import MigrationError
from reengage.models import SQLModel
from reengage.store import Store, migrate
from reengage.store.engine import create_engine


def test_empty_database_upgrades_to_head_with_every_table(database_url: str) -> None:
    engine = create_engine(database_url)
    assert migrate.current_revision(engine) is None

    migrate.upgrade(engine)

    assert migrate.current_revision(engine) == migrate.head_revision()
    tables = set(sa.inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    engine.dispose()


def test_downgrade_to_base_and_back_leaves_a_working_schema(database_url: str) -> None:
    engine = create_engine(database_url)
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert not set(SQLModel.metadata.tables) & set(sa.inspect(engine).get_table_names())
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


def test_opening_an_unmigrated_database_says_to_run_db_upgrade(database_url: str) -> None:
    with pytest.raises(MigrationError, match="reengage db upgrade"):
        Store.open(database_url)


def test_models_and_migrations_agree(database_url: str) -> None:
    """A model change without a migration would make the two drift; autogenerate sees it."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(database_url)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_upgrading_a_database_with_a_customer_enrolled_twice_keeps_the_first_running(
    database_url: str,
) -> None:
    # Before 0005 two passes at once could enroll a customer twice in one campaign.
    engine = create_engine(database_url)
    migrate.upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO customers (external_id, email, locale, consent, status, contacts,"
                " interests, important_dates, tags, created_at, updated_at) VALUES ('c1',"
                " 'a@example.com', 'en', true, 'active', '[]', '[]', '[]', '[]',"
                " '2026-11-01 00:00:00', '2026-11-01 00:00:00')"
            )
        )
        for day in (1, 2):
            conn.execute(
                sa.text(
                    "INSERT INTO enrollments (customer_id, campaign_id, status, next_step,"
                    " enrolled_at) SELECT id, 'habit', 'active', 0, :at FROM customers"
                ),
                {"at": f"2026-11-0{day} 00:00:00"},
            )
    migrate.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT status, exit_reason FROM enrollments ORDER BY id")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("active", None), ("exited", "duplicate")]


def test_mail_sent_before_0007_falls_back_to_the_customers_current_address(
    database_url: str,
) -> None:
    # Before 0007 a message row did not name its recipient: it acts on the customer's address.
    engine = create_engine(database_url)
    migrate.upgrade(engine, "0006")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO customers (external_id, email, locale, consent, status, contacts,"
                " interests, important_dates, tags, created_at, updated_at) VALUES ('c1',"
                " 'ana@example.com', 'en', true, 'active', '[]', '[]', '[]', '[]',"
                " '2026-11-01 00:00:00', '2026-11-01 00:00:00')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO enrollments (customer_id, campaign_id, status, next_step,"
                " enrolled_at) SELECT id, 'habit', 'active', 1, '2026-11-01 00:00:00'"
                " FROM customers"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO messages (enrollment_id, customer_id, campaign_id, step_key, token,"
                " status, attempts, created_at) SELECT id, customer_id, 'habit', 'first',"
                " 'OLDTOKEN', 'sent', 1, '2026-11-01 00:00:00' FROM enrollments"
            )
        )
    migrate.upgrade(engine)
    engine.dispose()
    store = Store.open(database_url)
    try:
        ref = store.responses.message("OLDTOKEN")
        assert ref is not None and ref.email == "ana@example.com"
    finally:
        store.close()
