"""One person's decisions from a SQLite audit store, read with the standard library.

``ungebus audit`` is a short command a caseworker or a DPO waits for: importing SQLAlchemy took
0.3-0.5 s on this machine, against 1 ms for the query itself. For a SQLite store (the default)
the command reads with ``sqlite3``; PostgreSQL goes through SQLAlchemy (``consumers.audit.
store``). The table is the one SQLAlchemy and Alembic make: the columns and the order below
follow ``store.decisions`` and ``store._ORDER``, and a test reads one store both ways.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

from consumers.audit.decisions import AuditedDecision, AuditedErasure

_TABLE = "audit_decisions"
_COLUMNS = (
    "decision_id, subject_pseudonym, decided_at, event_type, event_id, decision, routes, "
    "reason, policy_version, held_until, audit_offset"
)
_SQLITE_SCHEMES = ("sqlite", "sqlite+pysqlite")


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///FILE`` URL (query options ignored); None for any other."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _SQLITE_SCHEMES or not rest.startswith("/"):
        return None
    database = rest[1:].split("?", 1)[0]
    return Path(database) if database and database != ":memory:" else None


class Reader:
    """A SQLite audit store, open for reading (the file must exist: nothing is created)."""

    def __init__(self, path: Path) -> None:
        self._connection = sqlite3.connect(path, timeout=10)

    def close(self) -> None:
        self._connection.close()

    def exists(self) -> bool:
        """Whether the store's table is there (a store never migrated has none)."""
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return self._connection.execute(query, (_TABLE,)).fetchone() is not None

    def is_empty(self) -> bool:
        return self._connection.execute(f"SELECT 1 FROM {_TABLE} LIMIT 1").fetchone() is None

    def decisions_about(self, pseudonym: str) -> list[AuditedDecision]:
        """Every decision about one person, oldest first (index on pseudonym, decided_at)."""
        rows = self._connection.execute(
            f"SELECT {_COLUMNS} FROM {_TABLE} WHERE subject_pseudonym = ? "
            "ORDER BY decided_at, audit_offset, decision_id",
            (pseudonym,),
        )
        return [
            AuditedDecision(
                decision_id=row[0],
                subject_pseudonym=row[1],
                decided_at=_utc(row[2]),
                event_type=row[3],
                event_id=row[4],
                decision=row[5],
                routes=tuple(json.loads(row[6])),
                reason=row[7],
                policy_version=row[8],
                held_until=None if row[9] is None else _utc(row[9]),
                offset=row[10],
            )
            for row in rows
        ]

    def erasures_of(self, pseudonym: str) -> list[AuditedErasure]:
        """The person's erasures, oldest first (none in a store from before erasures)."""
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_erasures'"
        if self._connection.execute(query).fetchone() is None:
            return []
        rows = self._connection.execute(
            "SELECT subject_pseudonym, erased_at, reason, principal, operator, keys_destroyed "
            "FROM audit_erasures WHERE subject_pseudonym = ? ORDER BY erased_at",
            (pseudonym,),
        )
        return [AuditedErasure(r[0], _utc(r[1]), r[2], r[3], r[4], r[5]) for r in rows]


def _utc(stored: str) -> dt.datetime:
    """SQLAlchemy keeps a UTC time on SQLite as naive ISO text (``bus.sql.UtcDateTime``)."""
    return dt.datetime.fromisoformat(stored).replace(tzinfo=dt.UTC)
