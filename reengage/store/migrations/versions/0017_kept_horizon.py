"""the rhythm horizon kept with the population (detection state and passes)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    for table in ("detection_state", "detection_passes"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("horizon", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in ("detection_passes", "detection_state"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("horizon")
