"""Alembic environment: migrate the connection ``consumers.audit.migrate`` hands over.

Run through ``ungebus audit-store`` (at every start), not the alembic CLI.
"""

from __future__ import annotations

from alembic import context

from consumers.audit.migrate import VERSION_TABLE
from consumers.audit.store import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run through consumers.audit.migrate, which hands over a connection")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
