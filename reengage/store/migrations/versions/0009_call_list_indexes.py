"""indexes for one rep's call list: open calls, waiting replies, latest call per customer

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # A rep's list joins the rep's customers to these by customer (reengage.store.rep_calls).
    op.create_index("ix_call_tasks_customer_status", "call_tasks", ["customer_id", "status"])
    op.create_index(
        "ix_replies_customer_status", "replies", ["customer_id", "status", "received_at"]
    )
    op.create_index(
        "ix_call_outcomes_customer_called", "call_outcomes", ["customer_id", "called_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_call_outcomes_customer_called", table_name="call_outcomes")
    op.drop_index("ix_replies_customer_status", table_name="replies")
    op.drop_index("ix_call_tasks_customer_status", table_name="call_tasks")
