"""Erasures (``ungebus erase``): who, when, why and by whom, by pseudonym.

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
        "audit_erasures",
        sa.Column("subject_pseudonym", sa.String(64), primary_key=True),
        sa.Column("erased_at", UtcDateTime(), primary_key=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("principal", sa.Text(), nullable=False),
        sa.Column("operator", sa.Text(), nullable=False),
        sa.Column("keys_destroyed", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_erasures")
