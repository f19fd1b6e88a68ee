"""mails read from a mailbox (IMAP, POP3), each recorded once

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_mails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=48), nullable=False),
        sa.Column("ours", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_mails")),
        sa.UniqueConstraint("key", name=op.f("uq_inbound_mails_key")),
    )
    with op.batch_alter_table("inbound_mails", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_mails_received_at"), ["received_at"])


def downgrade() -> None:
    with op.batch_alter_table("inbound_mails", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_mails_received_at"))
    op.drop_table("inbound_mails")
