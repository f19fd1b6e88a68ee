"""detection passes that several workers share, chunk by chunk

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "detection_passes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("running", sa.Boolean(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("whole", sa.Boolean(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("population", sa.JSON(), nullable=False),
        sa.Column("population_at", sa.DateTime(), nullable=False),
        sa.Column("cursor_id", sa.Integer(), nullable=False),
        sa.Column("exhausted", sa.Boolean(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_detection_passes")),
    )
    with op.batch_alter_table("detection_passes", schema=None) as batch_op:
        batch_op.create_index("ux_detection_passes_running", ["running"], unique=True)
    op.create_table(
        "detection_chunks",
        sa.Column("pass_id", sa.Integer(), nullable=False),
        sa.Column("after_id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["pass_id"],
            ["detection_passes.id"],
            name=op.f("fk_detection_chunks_pass_id_detection_passes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pass_id", "after_id", name=op.f("pk_detection_chunks")),
    )


def downgrade() -> None:
    op.drop_table("detection_chunks")
    with op.batch_alter_table("detection_passes", schema=None) as batch_op:
        batch_op.drop_index("ux_detection_passes_running")
    op.drop_table("detection_passes")
