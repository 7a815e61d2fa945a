"""The handover tracker: nobody lets go of a young person before someone else has taken over.

Per young person it keeps the open tasks and their due-by (a fold over routed tasks and
take-over acknowledgements), escalates to the unit's lead when due-by passes with nobody having
taken over, and tells a municipality that handed a young person over whether the receiver has
taken over. Pure: the faust shell feeds it records and the clock, and writes what it returns.

Bounded per record, like the router: a record whose outputs or state would be larger than the
producer takes is dead-lettered and leaves no state behind; ids longer than any the bus makes
are refused when read, so the timer's escalations, made later from the state, stay small.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import schemas
from bus.erasure.record import erased_pseudonym
from bus.limits import RecordLimits
from bus.topics import Topics
from schemas.domain import KOMMUNEKODER
from streams.handover.refusals import take_over_refusal
from streams.handover.state import Acknowledgement, Handovers, OpenTask
from streams.handover.store import HandoverStore
from streams.routing.dead_letters import DeadLetters, dead_letter
from streams.routing.outputs import InMessage, Output, bus_record, check_sizes

COMPONENT = "tracker"
MAX_ID = 256  # characters of a task or event id (the bus makes UUIDs)


OpenCounts = Mapping[tuple[str, str], tuple[int, int]]  # (unit, kommunekode) -> (open, overdue)


class HandoverObserver(Protocol):
    """Told what happens to each task (for operators: spans and metrics)."""

    def handover(
        self, outcome: str, task_id: str, event_id: str, unit: str, kommunekode: str
    ) -> None: ...

    def dead_letter(self, error_type: str) -> None: ...

    def open_tasks(self, counts: OpenCounts) -> None: ...


class Unobserved:
    def handover(
        self, outcome: str, task_id: str, event_id: str, unit: str, kommunekode: str
    ) -> None:
        pass

    def dead_letter(self, error_type: str) -> None:
        pass

    def open_tasks(self, counts: OpenCounts) -> None:
        pass


@dataclass
class Tracker:
    topics: Topics
    unknown_ack_grace: dt.timedelta = dt.timedelta(minutes=5)
    keep_closed: dt.timedelta = dt.timedelta(days=30)
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    observer: HandoverObserver = field(default_factory=Unobserved)
    limits: RecordLimits = field(default_factory=RecordLimits)
    dead_letters: DeadLetters = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.dead_letters = DeadLetters(
            self.topics.deadletter, self.limits, COMPONENT, self.clock, self.observer.dead_letter
        )

    def handle(self, message: InMessage, store: HandoverStore) -> list[Output]:
        """One record from a task topic or a municipality's take-over topic; a bad one becomes
        a dead letter and leaves no state change behind."""
        now = self.clock()
        store.begin()
        try:
            if message.topic == self.topics.erasures:  # a person erased: their state goes
                limit = self.limits.max_record_bytes
                store.set(erased_pseudonym(message.key, message.value, limit), Handovers())
                return []
            if message.value is None:
                raise ValueError("the record has no value")
            name, _version, record = schemas.decode(
                message.value, max_size=self.limits.max_record_bytes
            )
            is_ack = self.topics.task_acks_kommunekode(message.topic) is not None
            if (name, is_ack) not in (("routed_task", False), ("task_taken_over", True)):
                raise ValueError(f"a {name} record does not belong on topic {message.topic}")
            for id_field in ("task_id", "event_id"):
                if len(record[id_field]) > MAX_ID:
                    raise ValueError(f"its {id_field} is longer than {MAX_ID} characters")
            pseudonym = record["subject_pseudonym"]
            state = store.get(pseudonym)
            if is_ack:
                ack = Acknowledgement(
                    record, message.value, now, message.topic, (message.partition, message.offset)
                )
                state, out = self.taken_over(state, ack, message.traceparent)
            else:
                state, out = self.task_routed(state, record, message.traceparent)
            store.set(pseudonym, state)
            return check_sizes(out, self.limits)
        except Exception as exc:  # failures are data: never lost, never silently acked
            reason = f"the tracker could not use this record: {type(exc).__name__}: {exc}"
            store.undo()
            return [self.dead_letters.of_record(message, reason, type(exc).__name__)]

    def expire(self, store: HandoverStore, pseudonyms: list[str]) -> list[Output]:
        """The timer's pass over everyone with something open; counts what is open."""
        out: list[Output] = []
        still_open: list[OpenTask] = []
        for pseudonym in pseudonyms:
            state, more = self.tick(pseudonym, store.get(pseudonym))
            store.set(pseudonym, state)
            out += more
            still_open += state.open.values()
        now = self.clock()
        self.observer.open_tasks(count_open(still_open, now))
        return out

    def task_routed(
        self, state: Handovers, task: Mapping[str, Any], traceparent: str | None
    ) -> tuple[Handovers, list[Output]]:
        task_id = task["task_id"]
        if task_id in state.open or task_id in state.closed:
            return state, []  # a repeated task record: already tracked
        opened = OpenTask(
            task_id=task_id,
            event_id=task["event_id"],
            event_type=task["event_type"],
            unit=task["unit"],
            kommunekode=task["kommunekode"],
            due_by=task["due_by"],
            sender_kommunekode=_sender(task),
            traceparent=traceparent,
        )
        state = replace(state, open={**state.open, task_id: opened})
        self._observe("opened", opened)
        early = state.early.get(task_id)
        if early is None:
            return state, []
        state = replace(state, early=_without(state.early, task_id))
        return self._take_over(state, opened, early, traceparent)

    def taken_over(
        self, state: Handovers, ack: Acknowledgement, traceparent: str | None
    ) -> tuple[Handovers, list[Output]]:
        """A unit says it has taken over (``ack.received_at`` is now)."""
        task_id = ack.record["task_id"]
        if task_id in state.closed:
            return state, []  # a repeated acknowledgement changes nothing
        task = state.open.get(task_id)
        if task is None:
            return replace(state, early={**state.early, task_id: ack}), []
        return self._take_over(state, task, ack, traceparent)

    def tick(self, pseudonym: str, state: Handovers) -> tuple[Handovers, list[Output]]:
        """Escalate what is overdue, reject acks for tasks that never came, forget old ones."""
        now = self.clock()
        out: list[Output] = []
        opened = dict(state.open)
        for task in state.open.values():
            if task.escalated or task.due_by > now:
                continue
            out += self._escalate(pseudonym, task, now)
            opened[task.task_id] = replace(task, escalated=True)
        early = dict(state.early)
        for task_id, ack in state.early.items():
            if now - ack.received_at >= self.unknown_ack_grace:
                reason = (
                    f"rejected take-over of task {task_id}: no such task was routed "
                    f"(waited {self.unknown_ack_grace}); not applied"
                )
                out.append(self._rejected(ack, reason, now))
                del early[task_id]
        closed = {k: t for k, t in state.closed.items() if now - t < self.keep_closed}
        return Handovers(opened, closed, early), out

    # -- internals --------------------------------------------------------------------------
    def _take_over(
        self,
        state: Handovers,
        task: OpenTask,
        acknowledgement: Acknowledgement,
        traceparent: str | None,
    ) -> tuple[Handovers, list[Output]]:
        now, ack = self.clock(), acknowledgement.record
        topic = acknowledgement.topic
        reason = take_over_refusal(task, ack, topic, self.topics.task_acks_kommunekode(topic))
        if reason is not None:
            self._observe("rejected", task)
            return state, [self._rejected(acknowledgement, reason, now)]
        state = replace(
            state,
            open=_without(state.open, task.task_id),
            closed={**state.closed, task.task_id: now},
        )
        self._observe("taken_over", task)
        out = []
        if task.sender_kommunekode:
            out.append(
                self._handover_status(
                    ack["subject_pseudonym"],
                    task,
                    "taken_over",
                    ack["taken_over_by"],
                    now,
                    traceparent or task.traceparent,
                )
            )
        return state, out

    def _observe(self, outcome: str, task: OpenTask) -> None:
        self.observer.handover(outcome, task.task_id, task.event_id, task.unit, task.kommunekode)

    def _escalate(self, pseudonym: str, task: OpenTask, now: dt.datetime) -> list[Output]:
        self._observe("escalated", task)
        record = {
            "task_id": task.task_id,
            "event_id": task.event_id,
            "event_type": task.event_type,
            "unit": task.unit,
            "kommunekode": task.kommunekode,
            "subject_pseudonym": pseudonym,
            "due_by": task.due_by,
            "escalated_at": now,
            "escalated_to": "unit_lead",
            "level": 1,
            "reason": f"nobody has taken over since {task.due_by.isoformat(timespec='minutes')}",
            "notify_kommunekode": task.sender_kommunekode,
        }
        out = [
            bus_record(
                self.topics.escalations(task.kommunekode, task.unit),
                "task_escalated",
                record,
                f"{task.task_id}/escalated/1",
                pseudonym,
                now,
                task.traceparent,
                COMPONENT,
                labels=_labels("task_escalated", task, "escalated"),
            )
        ]
        if task.sender_kommunekode:
            out.append(
                self._handover_status(
                    pseudonym, task, "not_taken_over", None, now, task.traceparent
                )
            )
        return out

    def _handover_status(
        self,
        pseudonym: str,
        task: OpenTask,
        status: str,
        taken_over_by: str | None,
        now: dt.datetime,
        traceparent: str | None,
    ) -> Output:
        assert task.sender_kommunekode is not None
        record = {
            "task_id": task.task_id,
            "event_id": task.event_id,
            "sender_kommunekode": task.sender_kommunekode,
            "unit": task.unit,
            "kommunekode": task.kommunekode,
            "subject_pseudonym": pseudonym,
            "status": status,
            "due_by": task.due_by,
            "taken_over_by": taken_over_by,
            "at": now,
        }
        return bus_record(
            self.topics.handovers(task.sender_kommunekode),
            "handover_status",
            record,
            f"{task.task_id}/{status}",
            pseudonym,
            now,
            traceparent,
            COMPONENT,
            labels=_labels("handover_status", task, status),
        )

    def _rejected(self, ack: Acknowledgement, reason: str, now: dt.datetime) -> Output:
        """An acknowledgement that is not applied: a dead letter with the reason, for audit."""
        return dead_letter(
            self.topics.deadletter,
            reason=reason,
            error_type="RejectedAcknowledgement",
            component=COMPONENT,
            source_topic=ack.topic,
            source_partition=ack.position[0],
            source_offset=ack.position[1],
            key=None,
            value=ack.wire,
            headers=[],
            event_id=None,
            now=now,
            limits=self.limits,
        )


def _labels(record: str, task: OpenTask, outcome: str) -> dict[str, str]:
    return {
        "ungebus.record": record,
        "ungebus.event_id": task.event_id,
        "ungebus.task_id": task.task_id,
        "ungebus.unit": task.unit,
        "ungebus.kommunekode": task.kommunekode,
        "ungebus.outcome": outcome,
    }


def count_open(
    tasks: Iterable[OpenTask], now: dt.datetime
) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (unit, kommunekode): how many tasks are open, and how many of them overdue."""
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    for task in tasks:
        place = (task.unit, task.kommunekode)
        open_, overdue = counts.get(place, (0, 0))
        counts[place] = (open_ + 1, overdue + (task.due_by <= now))
    return counts


def _sender(task: Mapping[str, Any]) -> str | None:
    """The sending municipality of a handover between municipalities on the bus, if any."""
    details = task["details"]
    if "from_kommunekode" not in details:
        return None
    sender = json.loads(details["from_kommunekode"])
    if sender in KOMMUNEKODER and sender != task["kommunekode"]:
        return str(sender)
    return None


def _without(mapping: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}
