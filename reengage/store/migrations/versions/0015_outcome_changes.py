"""corrections of call outcomes, one row per changed field

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "call_outcome_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outcome_id", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("changed_by", sa.String(length=200), nullable=True),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["outcome_id"],
            ["call_outcomes.id"],
            name=op.f("fk_call_outcome_changes_outcome_id_call_outcomes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_outcome_changes")),
    )
    with op.batch_alter_table("call_outcome_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_outcome_changes_outcome_id"), ["outcome_id"])


def downgrade() -> None:
    with op.batch_alter_table("call_outcome_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_outcome_changes_outcome_id"))
    op.drop_table("call_outcome_changes")
