"""Take-overs on their way to Kafka (the inbox's outbox).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bus.sql import UtcDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "pending_take_overs",
        sa.Column("task_id", sa.String(200), primary_key=True),
        sa.Column("taken_over_by", sa.String(200), nullable=False),
        sa.Column("taken_over_at", UtcDateTime(), nullable=False),
        sa.Column("take_over_note", sa.Text(), nullable=True),
        sa.Column("acks_ends", sa.JSON(), nullable=False),
        sa.Column("intended_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pending_take_overs")
