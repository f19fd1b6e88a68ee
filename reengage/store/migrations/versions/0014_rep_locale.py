"""each rep's language, for the digest and the call form

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Reps imported before this spoke English as far as reengage knew: they still do.
    with op.batch_alter_table("reps") as batch:
        batch.add_column(
            sa.Column("locale", sa.String(length=35), nullable=False, server_default="en")
        )


def downgrade() -> None:
    with op.batch_alter_table("reps") as batch:
        batch.drop_column("locale")
