"""inbound mail and webhook events that name no message of ours, kept for review

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_unmatched",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("addresses", sa.String(length=500), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_inbound_unmatched_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_unmatched")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_inbound_unmatched_dedupe_key")),
    )
    with op.batch_alter_table("inbound_unmatched", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_unmatched_received_at"), ["received_at"])


def downgrade() -> None:
    with op.batch_alter_table("inbound_unmatched", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_unmatched_received_at"))
    op.drop_table("inbound_unmatched")
