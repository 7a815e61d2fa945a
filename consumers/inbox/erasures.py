"""A person erased (``ungebus erase``, read from ``erasures``): their tasks, escalations and
noted take-overs deleted from the inbox, and remembered, so a task of theirs routed before the
erasure that arrives later is not stored again.

Deleted means gone from the disk too: SQLite overwrites deleted content (``secure_delete``,
``bus.sql``) and its write-ahead log is checkpointed and emptied after each erasure; PostgreSQL
leaves dead rows to VACUUM (its autovacuum, or the municipality's own schedule).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import String, delete, select, text
from sqlalchemy.orm import Mapped, mapped_column, sessionmaker

from bus.erasure.fact import Erasure
from bus.sql import UtcDateTime
from consumers.inbox.store import (
    Base,
    EscalationRow,
    PendingTakeOverRow,
    TaskRow,
    TaskStore,
)
from consumers.inbox.tasks import Task


class ErasureRow(Base):
    """Who was erased, and when: no personal data (the pseudonym only)."""

    __tablename__ = "erasures"

    subject_pseudonym: Mapped[str] = mapped_column(String(200), primary_key=True)
    erased_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class Erasures:
    def __init__(self, store: TaskStore) -> None:
        self.engine = store.engine
        self._sessions = sessionmaker(store.engine, expire_on_commit=False)

    def apply(self, erasures: Sequence[Erasure]) -> int:
        """Delete what the inbox holds of each person, from before their erasure; how many
        tasks went. Applying one twice changes nothing."""
        deleted = 0
        latest: dict[str, dt.datetime] = {}
        for e in erasures:
            latest[e.subject_pseudonym] = max(
                e.erased_at, latest.get(e.subject_pseudonym, e.erased_at)
            )
        with self._sessions.begin() as session:
            for pseudonym, erased_at in latest.items():
                theirs = select(TaskRow.task_id).where(
                    TaskRow.subject_pseudonym == pseudonym, TaskRow.routed_at <= erased_at
                )
                ids = list(session.scalars(theirs))
                if ids:
                    session.execute(
                        delete(PendingTakeOverRow).where(PendingTakeOverRow.task_id.in_(ids))
                    )
                    session.execute(delete(TaskRow).where(TaskRow.task_id.in_(ids)))
                session.execute(
                    delete(EscalationRow).where(
                        EscalationRow.subject_pseudonym == pseudonym,
                        EscalationRow.escalated_at <= erased_at,
                    )
                )
                known = session.get(ErasureRow, pseudonym)
                if known is None:
                    session.add(ErasureRow(subject_pseudonym=pseudonym, erased_at=erased_at))
                elif known.erased_at < erased_at:
                    known.erased_at = erased_at
                deleted += len(ids)
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as connection:
                connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        return deleted

    def not_erased(self, tasks: Sequence[Task]) -> tuple[list[Task], list[Task]]:
        """(tasks to store, tasks of people erased after the task was routed)."""
        if not tasks:
            return [], []
        pseudonyms = {t.subject_pseudonym for t in tasks}
        with self._sessions() as session:
            query = select(ErasureRow).where(ErasureRow.subject_pseudonym.in_(pseudonyms))
            erased = {row.subject_pseudonym: row.erased_at for row in session.scalars(query)}
        keep: list[Task] = []
        gone: list[Task] = []
        for task in tasks:
            at = erased.get(task.subject_pseudonym)
            (gone if at is not None and task.routed_at <= at else keep).append(task)
        return keep, gone
