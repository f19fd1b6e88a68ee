"""at most one running enrollment per customer and campaign

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

RUNNING = "status IN ('active', 'attention')"


def upgrade() -> None:
    # Two passes at once could enroll a customer twice in one campaign; keep the first of
    # each pair running and end the others, so the index below can be built.
    op.execute(
        sa.text(
            "UPDATE enrollments SET status = 'exited', exit_reason = 'duplicate', "
            "ended_at = enrolled_at, next_due_at = NULL, claimed_until = NULL "
            f"WHERE {RUNNING} AND id NOT IN ("
            "  SELECT keep FROM (SELECT MIN(id) AS keep FROM enrollments "
            f"  WHERE {RUNNING} GROUP BY customer_id, campaign_id) AS firsts)"
        )
    )
    op.create_index(
        "ux_enrollments_running",
        "enrollments",
        ["customer_id", "campaign_id"],
        unique=True,
        sqlite_where=sa.text(RUNNING),
        postgresql_where=sa.text(RUNNING),
    )


def downgrade() -> None:
    op.drop_index("ux_enrollments_running", table_name="enrollments")
