"""when detection next looks at each customer, and what the last whole pass used

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Existing customers get NULL: the first pass after the upgrade looks at everyone (it
    # would anyway: there is no detection_state yet).
    with op.batch_alter_table("customer_stats", schema=None) as batch_op:
        batch_op.add_column(sa.Column("look_again_at", sa.DateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("look_version", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.create_index(batch_op.f("ix_customer_stats_look_again_at"), ["look_again_at"])
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enrollments_ended_at"), ["ended_at"])
    op.create_table(
        "detection_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("population", sa.JSON(), nullable=False),
        sa.Column("population_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_detection_state")),
    )


def downgrade() -> None:
    op.drop_table("detection_state")
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrollments_ended_at"))
    with op.batch_alter_table("customer_stats", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_stats_look_again_at"))
        batch_op.drop_column("look_version")
        batch_op.drop_column("look_again_at")
