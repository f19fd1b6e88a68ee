"""call outcomes and the reps' morning digests

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_tasks", schema=None) as batch_op:
        batch_op.create_index("ix_call_tasks_status_due", ["status", "due_at"])

    op.create_table(
        "call_outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("rep_external_id", sa.String(length=200), nullable=True),
        sa.Column("called_at", sa.DateTime(), nullable=False),
        sa.Column("reached", sa.String(length=16), nullable=False),
        sa.Column("contact_name", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("reason_text", sa.Text(), nullable=True),
        sa.Column("scope", sa.String(length=16), nullable=True),
        sa.Column("win_back", sa.Text(), nullable=True),
        sa.Column("worth", sa.String(length=8), nullable=False),
        sa.Column("next_step", sa.String(length=16), nullable=False),
        sa.Column("call_again_on", sa.Date(), nullable=True),
        sa.Column("value_at_risk", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_call_outcomes_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_outcomes")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_call_outcomes_dedupe_key")),
    )
    with op.batch_alter_table("call_outcomes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_outcomes_customer_id"), ["customer_id"])
        batch_op.create_index(batch_op.f("ix_call_outcomes_called_at"), ["called_at"])

    op.create_table(
        "digests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rep_external_id", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("customer_ids", sa.JSON(), nullable=False),
        sa.Column("more", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("retry_at", sa.DateTime(), nullable=True),
        sa.Column("smtp_response", sa.String(length=500), nullable=True),
        sa.Column("message_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digests")),
        sa.UniqueConstraint("rep_external_id", "day", name=op.f("uq_digests_rep_external_id_day")),
        sa.UniqueConstraint("token", name=op.f("uq_digests_token")),
    )


def downgrade() -> None:
    op.drop_table("digests")
    op.drop_table("call_outcomes")
    with op.batch_alter_table("call_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_call_tasks_status_due")
