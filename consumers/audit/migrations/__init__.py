"""Alembic migrations of the audit store (run by ``consumers.audit.migrate``)."""
