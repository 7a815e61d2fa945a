"""Alembic migrations of the inbox's task store (run by ``consumers.inbox.migrate``)."""
