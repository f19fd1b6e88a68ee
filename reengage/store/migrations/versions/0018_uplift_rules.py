"""the segments each campaign's min_uplift leaves out, measured at most once an hour

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "uplift_rules",
        sa.Column("campaign_id", sa.String(length=63), nullable=False),
        sa.Column("min_uplift", sa.Float(), nullable=False),
        sa.Column("measured_at", sa.DateTime(), nullable=False),
        sa.Column("segments", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_uplift_rules")),
    )


def downgrade() -> None:
    op.drop_table("uplift_rules")
