"""Taking a task over: the caseworker's acknowledgement goes to Kafka before it counts.

Order matters: publish ``task_taken_over`` and wait for Kafka's acknowledgement, then record it.
If Kafka does not acknowledge, nothing is recorded and the caseworker is told to try again, so
the inbox never shows a task as taken over that the handover tracker will still escalate.

Each take-over is published once, even when the inbox dies between Kafka's acknowledgement and
the database's record of it: the take-over is noted first (``consumers.inbox.pending``), and a
note found later is settled by reading the acknowledgement topic back before anything is
published again (:meth:`TakeOverService.settle`, run by the caseworker's retry and by the
inbox's resolver after a restart).

A note goes out sealed with the person's existing data key (the inbox may read keys, never
create them); without one the take-over goes out without its note, which stays in this inbox,
and the caseworker is told (``TakeOverResult.note_shared``).

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
from bus.crypto import DataKey
from bus.failpoints import failpoint
from bus.keystore import KeyStoreError
from bus.limits import RecordLimits
from bus.records import NotDelivered, Publisher
from bus.sealed_fields import KeyLookup
from bus.telemetry import EVENT_ID, KOMMUNEKODE, OUTCOME, TASK_ID, UNIT
from consumers.inbox.acks_log import AcksLog, AcksLogUnavailable
from consumers.inbox.caseworkers import Caseworker
from consumers.inbox.pending import Pending, PendingTakeOvers
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
    retry_after_s: int | None = None  # for a 503: when to try again

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
    retry_after_s = 5


class TakeOverInProgress(TakeOverRefused):
    """Noted and maybe on Kafka, not yet settled (the inbox stopped mid-way): try again soon."""

    status = 503
    code = "in_progress"

    def __init__(self, reason: str, retry_after_s: float) -> None:
        super().__init__(reason)
        self.retry_after_s = max(1, round(retry_after_s))


class AcknowledgementTooLarge(TakeOverRefused):
    """Not expected: task ids are bounded when read and the note here; a guard all the same."""

    status = 422
    code = "too_large"


@dataclass(frozen=True)
class TakeOverResult:
    task: InboxTask
    published: bool  # False when this caseworker had already taken it over (nothing sent)
    # False when the note could not go out with the take-over: the person's data key is gone
    # (the note is sealed with it on Kafka); it is kept in this inbox only.
    note_shared: bool = True


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
        pending: PendingTakeOvers,
        acks: AcksLog,
        *,
        acks_topic: str,
        settle_s: float,
        limits: RecordLimits | None = None,
        keys: KeyLookup | None = None,
    ) -> None:
        self._keys = keys  # the inbox's read access to data keys: it seals notes, never makes keys
        self._store = store
        self._publisher = publisher
        self._pending = pending
        self._acks = acks
        self._acks_topic = acks_topic
        self._settle_s = settle_s  # a note this old: its publisher has delivered or given up
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
            noted = self._pending.of_task(task_id)
            if noted is None:
                take_over = TakeOver(caseworker.staff_id, to_millis(now), note)
                noted = self._note(task_id, take_over, now)
                if noted.take_over == take_over:  # ours, not another inbox's
                    recorded = self._publish_noted(found.task, noted, request)
                    shared = note is None or self._note_key(found.task) is not None
                    return self._taken_over(caseworker, found, recorded, shared)
            if noted.take_over.taken_over_by != caseworker.staff_id:
                raise AlreadyTakenOver(
                    f"Task {task_id} is being taken over by {noted.take_over.taken_over_by}."
                )
            if noted.intended_at > now - dt.timedelta(seconds=self._settle_s):
                raise TakeOverInProgress(
                    f"Your take-over of task {task_id} is on its way; please try again in "
                    f"{self._settle_s:.0f} seconds.",
                    self._settle_s,
                )
            recorded = self._settle(found.task, noted, request)
        return self._taken_over(caseworker, found, recorded)

    def _taken_over(
        self, caseworker: Caseworker, found: InboxTask, recorded: TakeOver, shared: bool = True
    ) -> TakeOverResult:
        tasks_taken_over.add(1, {UNIT: caseworker.unit, KOMMUNEKODE: caseworker.kommunekode})
        task = InboxTask(found.task, recorded, found.escalations)
        return TakeOverResult(task, published=True, note_shared=shared)

    def _note_key(self, task: Task) -> DataKey | None:
        """The person's existing data key, to seal a note with; None when there is none."""
        if self._keys is None:
            return None
        try:
            keys = self._keys.keys_of(task.subject_pseudonym)
        except KeyStoreError as exc:
            raise AcknowledgementFailed(
                f"Not taken over: the key store did not answer ({exc}). Nothing was recorded; "
                "please try again."
            ) from exc
        return keys[-1] if keys else None

    def _note(self, task_id: str, take_over: TakeOver, now: dt.datetime) -> Pending:
        try:
            ends = self._acks.ends()
        except AcksLogUnavailable as exc:
            raise AcknowledgementFailed(
                f"Not taken over: Kafka did not answer ({exc}). Nothing was recorded; please "
                "try again."
            ) from exc
        return self._pending.note(task_id, take_over, ends, now)

    def _publish_noted(self, task: Task, noted: Pending, request: trace.Span) -> TakeOver:
        """Publish a take-over just noted, then record it; on failure, forget the note
        unless the take-over reached Kafka after all."""
        failpoint("inbox.take_over.noted")  # the fault suite's F5: noted, not yet published
        try:
            self._acknowledge(task, noted.take_over, request)
        except (AcknowledgementFailed, AcknowledgementTooLarge):
            if not self._landed(noted):
                self._pending.forget(task.task_id)
                raise
        failpoint("inbox.take_over.published")  # F5: on Kafka, not yet recorded
        return self._store.mark_taken_over(task.task_id, noted.take_over)

    def _landed(self, noted: Pending) -> bool:
        try:
            return self._acks.landed(noted.task_id, noted.acks_ends)
        except AcksLogUnavailable as exc:
            raise TakeOverInProgress(
                f"Your take-over of task {noted.task_id} may be on its way; please try again "
                f"in {self._settle_s:.0f} seconds ({exc}).",
                self._settle_s,
            ) from exc

    def _settle(self, task: Task, noted: Pending, request: trace.Span) -> TakeOver:
        """A note its publisher left behind: publish it only if it is not on Kafka already."""
        if not self._landed(noted):
            self._acknowledge(task, noted.take_over, request)
        return self._store.mark_taken_over(task.task_id, noted.take_over)

    def settle(self, now: dt.datetime) -> int:
        """Settle every note old enough that its publisher is done (the inbox's resolver,
        after a restart); how many were settled."""
        settled = 0
        for noted in self._pending.noted_before(now - dt.timedelta(seconds=self._settle_s)):
            with self._lock, tracer.start_as_current_span("settle take-over") as span:
                task = self._store.task_by_id(noted.task_id)
                if task is None:  # not expected: a note is only made for a stored task
                    self._pending.forget(noted.task_id)
                    continue
                span.set_attributes({TASK_ID: task.task_id, EVENT_ID: task.event_id})
                self._settle(task, noted, span)
                settled += 1
        return settled

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
            key = self._note_key(task) if take_over.note else None
            if take_over.note and key is None:
                span.set_attribute("ungebus.note", "left_out")  # no key: never in the clear
            out = acknowledgement(self._acks_topic, task, take_over, key)
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
