"""The consumers' SQL stores: one way to connect, one aware-UTC column type, Alembic upgrades.

Shared here so the inbox and the audit store keep their databases alike (SQLite by default
with WAL and a busy timeout, PostgreSQL by its ``postgresql+psycopg://`` URL) without
importing each other.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Dialect, Engine, create_engine, event, make_url
from sqlalchemy.types import TypeDecorator

SUPPORTED_DIALECTS = ("sqlite", "postgresql")


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in and out, whatever the database keeps (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: ungebus stores aware UTC times only")
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def connect(url: str, what: str = "the store") -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout (a writer and readers share it)."""
    # hide_parameters: an error message must never quote a row (it may hold a CPR number).
    backend = make_url(url).get_backend_name()  # before create_engine loads a driver
    if backend not in SUPPORTED_DIALECTS:
        raise ValueError(f"{what} supports {' and '.join(SUPPORTED_DIALECTS)}, not {backend}")
    engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    # Deleted rows are overwritten, not left in free pages: an erased person's data is gone
    # from the file (``ungebus erase``; the inbox also empties its WAL after an erasure).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def insert(engine: Engine) -> Any:
    """The dialect's ``insert`` (it has ``on_conflict_do_nothing`` / ``_do_update``).

    The dialects are imported here, by writers: PostgreSQL's alone takes a tenth of a second
    to import, which a reader such as ``ungebus audit`` on SQLite need not pay.
    """
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


def migrate(engine: Engine, migrations: Path, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` with the Alembic scripts in ``migrations``.

    The scripts' ``env.py`` migrates the connection it finds in ``config.attributes``.
    Alembic is imported here: a reader of a store (``ungebus audit``) never pays for it.
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
