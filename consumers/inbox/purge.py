"""Closed tasks purged once their data class's retention has passed.

A task that was taken over is closed: the case goes on in the municipality's own records
system, and the inbox keeps the task (its details, the take-over and its note, its
escalations) only as long as the retention table (``streams/retention.toml``) keeps the class
``tasks``, counted from the take-over, as KLE deadlines count from when a case closed. Open
tasks are never purged, however old: someone must still take them over.

Deleted rows must not stay readable on disk. On SQLite every connection of the inbox has
``PRAGMA secure_delete=ON`` (``bus.sql``), so freed pages are zeroed,
and after a purge a WAL checkpoint (TRUNCATE) writes the zeroed pages into the database and
empties the write-ahead log that still held the old ones. On PostgreSQL the rows are deleted
and their space is reused by vacuum (see the README on what that leaves).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import Engine, and_, delete, func, or_, select, text

from bus.retention import DataClass, RetentionError, RetentionTable
from consumers.inbox.store import EscalationRow, TaskRow

log = logging.getLogger(__name__)
TASKS_CLASS = "tasks"  # the retention table's class of the inbox's tasks
ESCALATIONS_CLASS = "escalations"


@dataclass(frozen=True)
class Purge:
    """What a purge deleted (or, in a dry run, would delete)."""

    data_class: DataClass
    closed_before: dt.datetime
    tasks: int
    escalations: int
    dry_run: bool = False
    checkpointed: bool | None = None  # SQLite: whether the WAL was emptied; None elsewhere

    def __str__(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"{verb} {self.tasks} closed task(s) taken over before "
            f"{self.closed_before:%Y-%m-%d %H:%M} UTC and {self.escalations} escalation(s) "
            f"(class {self.data_class.name!r}: kept {self.data_class.retention} after the "
            "take-over)"
        )


def closed_before(now: dt.datetime, data_class: DataClass) -> dt.datetime:
    """Tasks taken over before this moment are past their retention."""
    if data_class.period is None:
        raise RetentionError(
            f"class {data_class.name!r} is kept {data_class.retention}: the inbox purges its "
            "closed tasks after a time in days (P<days>D)"
        )
    return now - data_class.period


def purge_closed(
    engine: Engine, table: RetentionTable, now: dt.datetime, *, dry_run: bool = False
) -> Purge:
    """Delete the tasks taken over before their retention ran out, with their escalations, in
    one transaction; on SQLite then checkpoint the WAL. ``dry_run`` only counts them."""
    data_class = table.data_class(TASKS_CLASS)
    before = closed_before(now, data_class)
    closed = select(TaskRow.task_id).where(TaskRow.taken_over_at < before)
    # An escalation goes with its task; one whose task never reached the inbox (a record
    # lost) goes once past the escalations' own retention.
    orphaned = and_(
        EscalationRow.task_id.not_in(select(TaskRow.task_id)),
        EscalationRow.escalated_at < closed_before(now, table.data_class(ESCALATIONS_CLASS)),
    )
    escalated = or_(EscalationRow.task_id.in_(closed), orphaned)
    with engine.begin() as connection:
        if dry_run:
            tasks = connection.scalar(select(func.count()).select_from(closed.subquery()))
            escalations = connection.scalar(
                select(func.count()).select_from(EscalationRow).where(escalated)
            )
        else:
            escalations = connection.execute(delete(EscalationRow).where(escalated)).rowcount
            tasks = connection.execute(
                delete(TaskRow).where(TaskRow.taken_over_at < before)
            ).rowcount
    checkpointed = None
    if engine.dialect.name == "sqlite" and not dry_run and (tasks or escalations):
        checkpointed = checkpoint(engine)
    return Purge(data_class, before, int(tasks or 0), int(escalations or 0), dry_run, checkpointed)


def checkpoint(engine: Engine) -> bool:
    """Copy the WAL into the database and truncate it; False if a reader kept it from
    finishing (the next purge, or SQLite's own checkpoints, finish it)."""
    with engine.connect() as connection:
        busy, _, _ = connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).one()
    if busy:
        log.warning("The inbox's write-ahead log could not be emptied yet: a reader holds it")
    return not busy
