"""Alembic environment: migrate the connection ``consumers.inbox.migrate`` hands over.

Run through ``ungebus inbox migrate`` (or on every start of the inbox), not the alembic CLI.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from consumers.inbox.store import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url to migrate")
    with create_engine(url).begin() as fresh:
        _run(fresh)


_main()
