"""Bring the audit store's schema up to date with Alembic (run at every start; idempotent)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from bus import sql

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Its own version table: the audit store may share a PostgreSQL database with the inbox.
VERSION_TABLE = "audit_alembic_version"


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision``."""
    sql.migrate(engine, MIGRATIONS, revision)
