"""the lapse model's horizon reason and held-out figures; the daemon's refits and verdicts

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("lapse_models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("horizon_source", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("median_gap_days", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("regular_buyers", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("held_out_from", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("held_out_auc", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("held_out_precision", sa.Float(), nullable=True))
    op.create_table(
        "lapse_refits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("horizon_days", sa.Float(), nullable=False),
        sa.Column("held_out_from", sa.DateTime(), nullable=True),
        sa.Column("candidate_auc", sa.Float(), nullable=True),
        sa.Column("in_force_auc", sa.Float(), nullable=True),
        sa.Column("candidate_precision", sa.Float(), nullable=True),
        sa.Column("in_force_precision", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["lapse_models.id"],
            name=op.f("fk_lapse_refits_model_id_lapse_models"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lapse_refits")),
    )
    with op.batch_alter_table("lapse_refits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lapse_refits_at"), ["at"])


def downgrade() -> None:
    with op.batch_alter_table("lapse_refits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lapse_refits_at"))
    op.drop_table("lapse_refits")
    with op.batch_alter_table("lapse_models", schema=None) as batch_op:
        batch_op.drop_column("held_out_precision")
        batch_op.drop_column("held_out_auc")
        batch_op.drop_column("held_out_from")
        batch_op.drop_column("regular_buyers")
        batch_op.drop_column("median_gap_days")
        batch_op.drop_column("horizon_source")
