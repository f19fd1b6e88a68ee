"""each message keeps the address it was sent to

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Nullable: rows written before this revision do not know where they went. Those fall
    # back to the customer's current address (what reengage acted on until now); every row
    # written from here on names its recipient, so a customer who changes address later is
    # not answered for by the old one's bounces, and the old one stays suppressed.
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recipient", sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("recipient")
