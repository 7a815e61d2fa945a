"""Taking a task over: the caseworker's acknowledgement goes to Kafka before it counts.

Order matters: publish ``task_taken_over`` and wait for Kafka's acknowledgement, then record it.
If Kafka does not acknowledge, nothing is recorded and the caseworker is told to try again, so
the inbox never shows a task as taken over that the handover tracker will still escalate.

The acknowledgement is sent in a PRODUCER span in the task's own trace (its stored
``traceparent``), linked to the caseworker's request; its context is the record's
``traceparent``, so the handover tracker closes the task in the same trace.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, replace

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from bus import telemetry
from bus.limits import RecordLimits
from bus.records import NotDelivered, Publisher
from bus.telemetry import EVENT_ID, KOMMUNEKODE, OUTCOME, TASK_ID, UNIT
from consumers.inbox.caseworkers import Caseworker
from consumers.inbox.records import acknowledgement
from consumers.inbox.store import TaskStore
from consumers.inbox.tasks import InboxTask, TakeOver, Task
from consumers.inbox.tracing import tasks_taken_over, tracer
from schemas.mapping import to_millis

MAX_NOTE = 500


class TakeOverRefused(Exception):
    """A take-over that was not applied; ``status`` is the HTTP status that says why."""

    status = 400
    code = "refused"  # the outcome on the request's span

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NoSuchTask(TakeOverRefused):
    """Unknown, or another municipality's or unit's: the same answer, so nothing leaks."""

    status = 404
    code = "not_found"


class AlreadyTakenOver(TakeOverRefused):
    status = 409
    code = "already_taken_over"


class NoteTooLong(TakeOverRefused):
    status = 422
    code = "note_too_long"


class AcknowledgementFailed(TakeOverRefused):
    status = 503
    code = "not_delivered"


class AcknowledgementTooLarge(TakeOverRefused):
    """Not expected: task ids are bounded when read and the note here; a guard all the same."""

    status = 422
    code = "too_large"


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
    def __init__(
        self,
        store: TaskStore,
        publisher: Publisher,
        acks_topic: str,
        limits: RecordLimits | None = None,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._acks_topic = acks_topic
        self._limits = limits or RecordLimits()
        self._lock = threading.Lock()  # one take-over at a time: no double acknowledgement

    def take_over(
        self, caseworker: Caseworker, task_id: str, note: str | None, now: dt.datetime
    ) -> TakeOverResult:
        """Take the task over; the outcome is also noted on the current (request's) span."""
        request = trace.get_current_span()
        request.set_attributes({UNIT: caseworker.unit, KOMMUNEKODE: caseworker.kommunekode})
        try:
            result = self._take_over(caseworker, task_id, note, now, request)
        except TakeOverRefused as refused:
            request.set_attributes(
                {OUTCOME: refused.code, "http.response.status_code": refused.status}
            )
            request.set_status(Status(StatusCode.ERROR, refused.code))
            raise
        request.set_attribute(OUTCOME, "taken_over" if result.published else "already_taken_over")
        return result

    def _take_over(
        self,
        caseworker: Caseworker,
        task_id: str,
        note: str | None,
        now: dt.datetime,
        request: trace.Span,
    ) -> TakeOverResult:
        note = (note or "").strip() or None
        if note is not None and len(note) > MAX_NOTE:
            raise NoteTooLong(f"The note is longer than {MAX_NOTE} characters.")
        with self._lock:
            found = find_task(self._store, caseworker, task_id)
            request.set_attributes({TASK_ID: task_id, EVENT_ID: found.task.event_id})
            if found.take_over is not None:
                if found.take_over.taken_over_by == caseworker.staff_id:
                    return TakeOverResult(found, published=False)  # a retry: already done
                raise AlreadyTakenOver(
                    f"Task {task_id} was already taken over by {found.take_over.taken_over_by}."
                )
            take_over = TakeOver(caseworker.staff_id, to_millis(now), note)
            self._acknowledge(found.task, take_over, request)
            recorded = self._store.mark_taken_over(task_id, take_over)
        tasks_taken_over.add(1, {UNIT: caseworker.unit, KOMMUNEKODE: caseworker.kommunekode})
        return TakeOverResult(InboxTask(found.task, recorded, found.escalations), published=True)

    def _acknowledge(self, task: Task, take_over: TakeOver, request: trace.Span) -> None:
        """Publish ``task_taken_over`` in the task's trace; AcknowledgementFailed if not stored."""
        caller = request.get_span_context()
        with tracer.start_as_current_span(
            telemetry.span_name("send", self._acks_topic),
            context=telemetry.context_from_traceparent(task.traceparent),
            kind=SpanKind.PRODUCER,
            links=[Link(caller)] if caller.is_valid else None,
            attributes={
                **telemetry.messaging_attributes("send", self._acks_topic),
                TASK_ID: task.task_id,
                EVENT_ID: task.event_id,
                UNIT: task.unit,
                KOMMUNEKODE: task.kommunekode,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            out = acknowledgement(self._acks_topic, task, take_over)
            out = replace(out, headers=telemetry.inject(out.headers))
            too_large = self._limits.too_large(out.topic, out.key, out.value, out.headers)
            if too_large is not None:
                span.set_attribute(OUTCOME, "too_large")
                raise AcknowledgementTooLarge(f"Not taken over: {too_large}.")
            try:
                [(partition, offset)] = self._publisher.publish([out])
            except NotDelivered as exc:
                span.set_attribute(OUTCOME, "not_delivered")
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise AcknowledgementFailed(
                    f"Not taken over: {exc}. Nothing was recorded; please try again."
                ) from exc
            span.set_attributes(
                {
                    OUTCOME: "taken_over",
                    "messaging.destination.partition.id": str(partition),
                    "messaging.kafka.offset": offset,
                }
            )
