"""Take-overs on their way to Kafka: the inbox's outbox, so each is published exactly once.

A take-over is published to ``task-acks.<kk>`` and then recorded in the task store. A process
killed between the two leaves a record on Kafka the database does not know, and a caseworker's
retry would publish a second one. So before publishing, the inbox notes the take-over here,
with where the acknowledgement topic ended at that moment (``acks_ends``). Whoever finds the
note later (the caseworker's retry, or the inbox's resolver after a restart) reads the topic
from those offsets: if the take-over is there it is only recorded, and only if it is not is it
published. Recording it removes the note in the same transaction
(:meth:`consumers.inbox.store.TaskStore.mark_taken_over`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import sessionmaker

from bus import sql
from consumers.inbox.store import PendingTakeOverRow
from consumers.inbox.tasks import TakeOver


@dataclass(frozen=True)
class Pending:
    task_id: str
    take_over: TakeOver
    acks_ends: dict[int, int]  # partition -> the acknowledgement topic's end before publishing
    intended_at: dt.datetime


class PendingTakeOvers:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def note(
        self, task_id: str, take_over: TakeOver, acks_ends: dict[int, int], now: dt.datetime
    ) -> Pending:
        """Note the take-over unless one is noted for the task already; the one noted."""
        row = {
            "task_id": task_id,
            "taken_over_by": take_over.taken_over_by,
            "taken_over_at": take_over.taken_over_at,
            "take_over_note": take_over.note,
            "acks_ends": {str(p): o for p, o in acks_ends.items()},
            "intended_at": now,
        }
        with self._sessions.begin() as session:
            insert = sql.insert(self.engine)(PendingTakeOverRow).values([row])
            session.execute(insert.on_conflict_do_nothing())
        found = self.of_task(task_id)
        assert found is not None
        return found

    def of_task(self, task_id: str) -> Pending | None:
        with self._sessions() as session:
            row = session.get(PendingTakeOverRow, task_id)
            return None if row is None else _pending(row)

    def noted_before(self, moment: dt.datetime) -> list[Pending]:
        """Notes older than ``moment``: their publisher has either delivered or given up."""
        query = select(PendingTakeOverRow).where(PendingTakeOverRow.intended_at < moment)
        with self._sessions() as session:
            return [_pending(row) for row in session.scalars(query)]

    def forget(self, task_id: str) -> None:
        """Drop the note of a take-over Kafka did not take (the caseworker is told to retry)."""
        with self._sessions.begin() as session:
            session.execute(delete(PendingTakeOverRow).where(PendingTakeOverRow.task_id == task_id))


def _pending(row: PendingTakeOverRow) -> Pending:
    return Pending(
        task_id=row.task_id,
        take_over=TakeOver(row.taken_over_by, row.taken_over_at, row.take_over_note),
        acks_ends={int(p): int(o) for p, o in row.acks_ends.items()},
        intended_at=row.intended_at,
    )
