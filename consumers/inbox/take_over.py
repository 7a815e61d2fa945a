"""Taking a task over: the caseworker's acknowledgement goes to Kafka before it counts.

Order matters: publish ``task_taken_over`` and wait for Kafka's acknowledgement, then record it.
If Kafka does not acknowledge, nothing is recorded and the caseworker is told to try again, so
the inbox never shows a task as taken over that the handover tracker will still escalate.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

from consumers.inbox.caseworkers import Caseworker
from consumers.inbox.publish import NotDelivered, Publisher
from consumers.inbox.records import acknowledgement
from consumers.inbox.store import TaskStore
from consumers.inbox.tasks import InboxTask, TakeOver
from schemas.mapping import to_millis

MAX_NOTE = 500


class TakeOverRefused(Exception):
    """A take-over that was not applied; ``status`` is the HTTP status that says why."""

    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NoSuchTask(TakeOverRefused):
    """Unknown, or another municipality's or unit's: the same answer, so nothing leaks."""

    status = 404


class AlreadyTakenOver(TakeOverRefused):
    status = 409


class AcknowledgementFailed(TakeOverRefused):
    status = 503


@dataclass(frozen=True)
class TakeOverResult:
    task: InboxTask
    published: bool  # False when this caseworker had already taken it over (nothing sent)


def find_task(store: TaskStore, caseworker: Caseworker, task_id: str) -> InboxTask:
    found = store.task(caseworker.kommunekode, caseworker.unit, task_id)
    if found is None:
        raise NoSuchTask(
            f"No task {task_id} in the inbox of {caseworker.unit} in {caseworker.kommunekode}."
        )
    return found


class TakeOverService:
    def __init__(self, store: TaskStore, publisher: Publisher, acks_topic: str) -> None:
        self._store = store
        self._publisher = publisher
        self._acks_topic = acks_topic
        self._lock = threading.Lock()  # one take-over at a time: no double acknowledgement

    def take_over(
        self, caseworker: Caseworker, task_id: str, note: str | None, now: dt.datetime
    ) -> TakeOverResult:
        note = (note or "").strip() or None
        if note is not None and len(note) > MAX_NOTE:
            raise TakeOverRefused(f"The note is longer than {MAX_NOTE} characters.")
        with self._lock:
            found = find_task(self._store, caseworker, task_id)
            if found.take_over is not None:
                if found.take_over.taken_over_by == caseworker.staff_id:
                    return TakeOverResult(found, published=False)  # a retry: already done
                raise AlreadyTakenOver(
                    f"Task {task_id} was already taken over by {found.take_over.taken_over_by}."
                )
            take_over = TakeOver(caseworker.staff_id, to_millis(now), note)
            try:
                self._publisher.publish([acknowledgement(self._acks_topic, found.task, take_over)])
            except NotDelivered as exc:
                raise AcknowledgementFailed(
                    f"Not taken over: {exc}. Nothing was recorded; please try again."
                ) from exc
            recorded = self._store.mark_taken_over(task_id, take_over)
        return TakeOverResult(InboxTask(found.task, recorded, found.escalations), published=True)
