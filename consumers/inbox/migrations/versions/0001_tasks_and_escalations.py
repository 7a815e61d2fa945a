"""Tasks and escalations of the inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bus.sql import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("kommunekode", sa.String(8), nullable=False),
        sa.Column("unit", sa.String(40), nullable=False),
        sa.Column("basis_kind", sa.String(20), nullable=False),
        sa.Column("basis_id", sa.String(200), nullable=False),
        sa.Column("basis_citation", sa.Text(), nullable=False),
        sa.Column("consent_id", sa.String(200), nullable=True),
        sa.Column("due_by", UtcDateTime(), nullable=False),
        sa.Column("priority", sa.String(20), nullable=False),
        sa.Column("policy_version", sa.String(100), nullable=False),
        sa.Column("subject_pseudonym", sa.String(200), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("routed_at", UtcDateTime(), nullable=False),
        sa.Column("traceparent", sa.String(200), nullable=True),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("taken_over_by", sa.String(200), nullable=True),
        sa.Column("taken_over_at", UtcDateTime(), nullable=True),
        sa.Column("take_over_note", sa.Text(), nullable=True),
    )
    op.create_index("ix_tasks_inbox", "tasks", ["kommunekode", "unit", "taken_over_at", "due_by"])
    op.create_table(
        "escalations",
        sa.Column("task_id", sa.String(200), primary_key=True),
        sa.Column("kommunekode", sa.String(8), primary_key=True),
        sa.Column("unit", sa.String(40), primary_key=True),
        sa.Column("level", sa.Integer(), primary_key=True),
        sa.Column("escalated_to", sa.String(20), primary_key=True),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("subject_pseudonym", sa.String(200), nullable=False),
        sa.Column("due_by", UtcDateTime(), nullable=False),
        sa.Column("escalated_at", UtcDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("notify_kommunekode", sa.String(8), nullable=True),
    )
    op.create_index("ix_escalations_inbox", "escalations", ["kommunekode", "unit", "escalated_at"])


def downgrade() -> None:
    op.drop_index("ix_escalations_inbox", table_name="escalations")
    op.drop_table("escalations")
    op.drop_index("ix_tasks_inbox", table_name="tasks")
    op.drop_table("tasks")
