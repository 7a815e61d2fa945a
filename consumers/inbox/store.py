"""The task store (SQLAlchemy 2.x): SQLite by default, PostgreSQL given its URL.

Each task is stored once: ``task_id`` is the primary key and a re-delivered record is an upsert
that changes nothing a caseworker did (who took over, when). The schema is Alembic's
(``consumers/inbox/migrations``); these mapped classes must match it (a test checks).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import JSON, Engine, Index, Integer, String, Text, delete, func, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from bus import sql
from bus.sql import UtcDateTime
from consumers.inbox.tasks import Basis, Escalation, InboxTask, TakeOver, Task


class Base(DeclarativeBase):
    pass


class TaskRow(Base):
    __tablename__ = "tasks"

    task_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(200))
    kommunekode: Mapped[str] = mapped_column(String(8))
    unit: Mapped[str] = mapped_column(String(40))
    basis_kind: Mapped[str] = mapped_column(String(20))
    basis_id: Mapped[str] = mapped_column(String(200))
    basis_citation: Mapped[str] = mapped_column(Text)
    consent_id: Mapped[str | None] = mapped_column(String(200))
    due_by: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    priority: Mapped[str] = mapped_column(String(20))
    policy_version: Mapped[str] = mapped_column(String(100))
    subject_pseudonym: Mapped[str] = mapped_column(String(200))
    details: Mapped[dict[str, str]] = mapped_column(JSON)
    routed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    traceparent: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    taken_over_by: Mapped[str | None] = mapped_column(String(200))
    taken_over_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    take_over_note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_tasks_inbox", "kommunekode", "unit", "taken_over_at", "due_by"),)


class EscalationRow(Base):
    __tablename__ = "escalations"

    task_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kommunekode: Mapped[str] = mapped_column(String(8), primary_key=True)
    unit: Mapped[str] = mapped_column(String(40), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    escalated_to: Mapped[str] = mapped_column(String(20), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(200))
    subject_pseudonym: Mapped[str] = mapped_column(String(200))
    due_by: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    escalated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text)
    notify_kommunekode: Mapped[str | None] = mapped_column(String(8))

    __table_args__ = (Index("ix_escalations_inbox", "kommunekode", "unit", "escalated_at"),)


class PendingTakeOverRow(Base):
    """A take-over on its way to Kafka (``consumers.inbox.pending``): gone once recorded."""

    __tablename__ = "pending_take_overs"

    task_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    taken_over_by: Mapped[str] = mapped_column(String(200))
    taken_over_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    take_over_note: Mapped[str | None] = mapped_column(Text)
    acks_ends: Mapped[dict[str, int]] = mapped_column(JSON)  # partition -> end offset before
    intended_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


# What a newer routed record of the same task may change; never the take-over.
_ROUTING_COLUMNS = (
    "event_type", "basis_kind", "basis_id", "basis_citation", "consent_id", "due_by", "priority",
    "policy_version", "details", "routed_at", "traceparent",
)  # fmt: skip


def connect(url: str) -> Engine:
    """An engine for the task store at ``url`` (SQLite or PostgreSQL)."""
    return sql.connect(url, "the inbox")


class TaskStore:
    """Tasks and escalations of one inbox; every query is for one municipality and unit."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def save(
        self, tasks: Sequence[Task], escalations: Sequence[Escalation], received_at: dt.datetime
    ) -> set[str]:
        """Store a batch in one transaction; duplicates change nothing. The new task ids."""
        new: set[str] = set()
        with self._sessions.begin() as session:
            if tasks:
                ids = {t.task_id for t in tasks}
                known = select(TaskRow.task_id).where(TaskRow.task_id.in_(ids))
                new = ids - set(session.scalars(known))
                session.execute(self._upsert_tasks(_latest_per_task(tasks), received_at))
            if escalations:
                session.execute(self._insert_escalations(escalations))
        return new

    def _insert(self) -> Any:
        return sql.insert(self.engine)

    def _upsert_tasks(self, tasks: Iterable[Task], received_at: dt.datetime) -> Any:
        stmt = self._insert()(TaskRow).values([_task_row(t, received_at) for t in tasks])
        return stmt.on_conflict_do_update(
            index_elements=[TaskRow.task_id],
            set_={name: stmt.excluded[name] for name in _ROUTING_COLUMNS},
            where=TaskRow.routed_at < stmt.excluded.routed_at,
        )

    def _insert_escalations(self, escalations: Sequence[Escalation]) -> Any:
        rows = {
            (e.task_id, e.kommunekode, e.unit, e.level, e.escalated_to): _escalation_row(e)
            for e in escalations
        }
        return self._insert()(EscalationRow).values(list(rows.values())).on_conflict_do_nothing()

    def open_tasks(self, kommunekode: str, unit: str) -> list[InboxTask]:
        query = select(TaskRow).where(
            TaskRow.kommunekode == kommunekode,
            TaskRow.unit == unit,
            TaskRow.taken_over_at.is_(None),
        )
        return self._with_escalations(query, kommunekode, unit)

    def recently_taken_over(self, kommunekode: str, unit: str, limit: int = 20) -> list[InboxTask]:
        query = (
            select(TaskRow)
            .where(
                TaskRow.kommunekode == kommunekode,
                TaskRow.unit == unit,
                TaskRow.taken_over_at.is_not(None),
            )
            .order_by(TaskRow.taken_over_at.desc())
            .limit(limit)
        )
        return self._with_escalations(query, kommunekode, unit)

    def task(self, kommunekode: str, unit: str, task_id: str) -> InboxTask | None:
        """The task if it belongs to this municipality and unit; None otherwise (not found)."""
        query = select(TaskRow).where(
            TaskRow.task_id == task_id, TaskRow.kommunekode == kommunekode, TaskRow.unit == unit
        )
        found = self._with_escalations(query, kommunekode, unit)
        return found[0] if found else None

    def task_by_id(self, task_id: str) -> Task | None:
        """The task, whoever's it is (for the inbox's own bookkeeping, never for a caseworker)."""
        with self._sessions() as session:
            row = session.get(TaskRow, task_id)
            return None if row is None else _task(row)

    def escalations(self, kommunekode: str, unit: str, limit: int = 100) -> list[Escalation]:
        """The unit's escalations, newest first, except those whose task is taken over."""
        taken = select(TaskRow.task_id).where(TaskRow.taken_over_at.is_not(None))
        query = (
            select(EscalationRow)
            .where(
                EscalationRow.kommunekode == kommunekode,
                EscalationRow.unit == unit,
                EscalationRow.task_id.not_in(taken),
            )
            .order_by(EscalationRow.escalated_at.desc())
            .limit(limit)
        )
        with self._sessions() as session:
            return [_escalation(row) for row in session.scalars(query)]

    def mark_taken_over(self, task_id: str, take_over: TakeOver) -> TakeOver:
        """Record the take-over unless someone got there first; return what is recorded.
        Its pending entry, if any, goes in the same transaction."""
        with self._sessions.begin() as session:
            session.execute(delete(PendingTakeOverRow).where(PendingTakeOverRow.task_id == task_id))
            session.execute(
                update(TaskRow)
                .where(TaskRow.task_id == task_id, TaskRow.taken_over_at.is_(None))
                .values(
                    taken_over_by=take_over.taken_over_by,
                    taken_over_at=take_over.taken_over_at,
                    take_over_note=take_over.note,
                )
            )
            row = session.get_one(TaskRow, task_id)
            recorded = _take_over(row)
        assert recorded is not None
        return recorded

    def count_tasks(self) -> int:
        with self._sessions() as session:
            return int(session.scalar(select(func.count()).select_from(TaskRow)) or 0)

    def _with_escalations(self, query: Any, kommunekode: str, unit: str) -> list[InboxTask]:
        with self._sessions() as session:
            rows = list(session.scalars(query))
            ids = [row.task_id for row in rows]
            by_task: dict[str, list[Escalation]] = {}
            if ids:
                escalated = select(EscalationRow).where(
                    EscalationRow.task_id.in_(ids),
                    EscalationRow.kommunekode == kommunekode,
                    EscalationRow.unit == unit,
                )
                for esc in session.scalars(escalated.order_by(EscalationRow.escalated_at)):
                    by_task.setdefault(esc.task_id, []).append(_escalation(esc))
        return [
            InboxTask(_task(row), _take_over(row), tuple(by_task.get(row.task_id, ())))
            for row in rows
        ]


def _latest_per_task(tasks: Sequence[Task]) -> list[Task]:
    latest: dict[str, Task] = {}
    for task in tasks:
        seen = latest.get(task.task_id)
        if seen is None or task.routed_at > seen.routed_at:
            latest[task.task_id] = task
    return list(latest.values())


def _task_row(task: Task, received_at: dt.datetime) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "event_id": task.event_id,
        "event_type": task.event_type,
        "kommunekode": task.kommunekode,
        "unit": task.unit,
        "basis_kind": task.basis.kind,
        "basis_id": task.basis.id,
        "basis_citation": task.basis.citation,
        "consent_id": task.consent_id,
        "due_by": task.due_by,
        "priority": task.priority,
        "policy_version": task.policy_version,
        "subject_pseudonym": task.subject_pseudonym,
        "details": dict(task.details),
        "routed_at": task.routed_at,
        "traceparent": task.traceparent,
        "received_at": received_at,
    }


def _task(row: TaskRow) -> Task:
    return Task(
        task_id=row.task_id,
        event_id=row.event_id,
        event_type=row.event_type,
        kommunekode=row.kommunekode,
        unit=row.unit,
        basis=Basis(kind=row.basis_kind, id=row.basis_id, citation=row.basis_citation),
        consent_id=row.consent_id,
        due_by=row.due_by,
        priority=row.priority,
        policy_version=row.policy_version,
        subject_pseudonym=row.subject_pseudonym,
        details=dict(row.details),
        routed_at=row.routed_at,
        traceparent=row.traceparent,
    )


def _take_over(row: TaskRow) -> TakeOver | None:
    if row.taken_over_at is None or row.taken_over_by is None:
        return None
    return TakeOver(row.taken_over_by, row.taken_over_at, row.take_over_note)


def _escalation_row(e: Escalation) -> dict[str, Any]:
    return {
        "task_id": e.task_id,
        "kommunekode": e.kommunekode,
        "unit": e.unit,
        "level": e.level,
        "escalated_to": e.escalated_to,
        "event_id": e.event_id,
        "event_type": e.event_type,
        "subject_pseudonym": e.subject_pseudonym,
        "due_by": e.due_by,
        "escalated_at": e.escalated_at,
        "reason": e.reason,
        "notify_kommunekode": e.notify_kommunekode,
    }


def _escalation(row: EscalationRow) -> Escalation:
    return Escalation(
        task_id=row.task_id,
        event_id=row.event_id,
        event_type=row.event_type,
        kommunekode=row.kommunekode,
        unit=row.unit,
        subject_pseudonym=row.subject_pseudonym,
        due_by=row.due_by,
        escalated_at=row.escalated_at,
        escalated_to=row.escalated_to,
        level=row.level,
        reason=row.reason,
        notify_kommunekode=row.notify_kommunekode,
    )
