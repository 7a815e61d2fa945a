"""The inbox's and the audit store's databases on the local PostgreSQL, for ``ungebus local
up --postgres`` and the dev stack (``ungebus run``/``demo``).

Each store gets a database of its own on the one server; the components are given its URL in
their own setting (``UNGEBUS_INBOX_DATABASE_URL``, ``UNGEBUS_AUDIT_DATABASE_URL``), which names
the server's password file and holds no password.
"""

from __future__ import annotations

from collections.abc import Callable

from deploy.local.postgres import LocalPostgres

DATABASES = {"inbox": "UNGEBUS_INBOX_DATABASE_URL", "audit": "UNGEBUS_AUDIT_DATABASE_URL"}
"""Database name -> the setting of the component that keeps its data there."""


def database_env(server: LocalPostgres) -> dict[str, str]:
    """The components' database settings for ``server``."""
    return {variable: server.url(name) for name, variable in DATABASES.items()}


def start_databases(server: LocalPostgres, echo: Callable[[str], None]) -> bool:
    """Start ``server`` unless it runs and create the stores' databases (once); whether it
    was started here."""
    started = server.up(echo=echo)
    for name in DATABASES:
        server.create_database(name)
    echo(
        f"The inbox and the audit store keep their data on PostgreSQL at {server.address} "
        f'(databases {", ".join(DATABASES)}; `eval "$(.venv/bin/ungebus local env)"` gives '
        "a shell their URLs, for `ungebus audit`)"
    )
    return started
