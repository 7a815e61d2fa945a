"""Routing decisions by person.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
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
        "audit_decisions",
        sa.Column("decision_id", sa.String(36), primary_key=True),
        sa.Column("subject_pseudonym", sa.String(64), nullable=False),
        sa.Column("decided_at", UtcDateTime(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("routes", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("policy_version", sa.Text(), nullable=False),
        sa.Column("held_until", UtcDateTime(), nullable=True),
        sa.Column("audit_offset", sa.BigInteger(), nullable=True),
        sa.Column("stored_at", UtcDateTime(), nullable=False),
    )
    op.create_index(
        "ix_audit_decisions_person", "audit_decisions", ["subject_pseudonym", "decided_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_audit_decisions_person", table_name="audit_decisions")
    op.drop_table("audit_decisions")
