"""The wire boundary: Kafka records in (tasks, escalations), acknowledgements out.

Reading never raises: a record the inbox cannot use becomes ``Rejected`` with a reason, for the
dead-letter topic. Reasons and codes never quote the record's content (no CPR in logs).
What the inbox writes is bounded (``bus.limits``): a dead letter keeps a record too large to
copy by reference, and a task with ids longer than any the bus makes is refused when read, so
its acknowledgement, made later, stays small.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import schemas
from bus import records
from bus.limits import RecordLimits
from bus.records import Outgoing, Received
from consumers.inbox.tasks import Basis, Escalation, TakeOver, Task

Headers = Sequence[tuple[str, bytes | None]]
TopicKind = Literal["tasks", "escalations"]
COMPONENT = "inbox"
MAX_ID = 256  # characters of a task or event id (the bus makes UUIDs)


@dataclass(frozen=True)
class Destination:
    """What a topic carries and for whom: the inbox subscribes to one per unit and kind."""

    kind: TopicKind
    kommunekode: str
    unit: str


@dataclass(frozen=True)
class Rejected:
    error_type: str  # machine-readable, e.g. decode:unknown_schema_id
    reason: str
    event_id: str | None = None


def header(headers: Sequence[tuple[str, str | bytes | None]] | None, name: str) -> str | None:
    for key, value in headers or ():
        if key == name and value is not None:
            return value if isinstance(value, str) else value.decode("utf-8", errors="replace")
    return None


def read(
    destination: Destination,
    value: bytes | None,
    headers: Headers | None,
    max_size: int = schemas.DEFAULT_MAX_SIZE,
) -> Task | Escalation | Rejected:
    """A task or an escalation for ``destination``, or why the record cannot be one."""
    if value is None:
        return Rejected("decode:no_value", "the record has no value (a tombstone?)")
    try:
        name, _version, record = schemas.decode(value, max_size=max_size)
    except schemas.DecodeError as exc:
        return Rejected(f"decode:{exc.code}", exc.reason)
    event_id = record.get("event_id") if isinstance(record.get("event_id"), str) else None
    if event_id is not None and len(event_id) > MAX_ID:
        return Rejected("validate:id_too_long", f"its event_id is longer than {MAX_ID} characters")
    if len(record.get("task_id") or "") > MAX_ID:
        reason = f"its task_id is longer than {MAX_ID} characters"
        return Rejected("validate:id_too_long", reason, event_id)
    expected = "routed_task" if destination.kind == "tasks" else "task_escalated"
    if name != expected:
        return Rejected(
            "validate:unexpected_schema",
            f"a {name} record on a {destination.kind} topic; expected {expected}",
            event_id,
        )
    if destination.kind == "escalations":
        return _escalation(destination, record)
    if (record["kommunekode"], record["unit"]) != (destination.kommunekode, destination.unit):
        # Never show a task to a municipality or unit it was not routed to.
        return Rejected(
            "validate:wrong_recipient",
            f"task for {record['unit']} in {record['kommunekode']} on the topic of "
            f"{destination.unit} in {destination.kommunekode}",
            event_id,
        )
    return _task(record, header(headers, "traceparent"))


def _task(record: Mapping[str, Any], traceparent: str | None) -> Task:
    basis = record["basis"]
    return Task(
        task_id=record["task_id"],
        event_id=record["event_id"],
        event_type=record["event_type"],
        kommunekode=record["kommunekode"],
        unit=record["unit"],
        basis=Basis(kind=basis["kind"], id=basis["id"], citation=basis["citation"]),
        consent_id=record["consent_id"],
        due_by=record["due_by"],
        priority=record["priority"],
        policy_version=record["policy_version"],
        subject_pseudonym=record["subject_pseudonym"],
        details=dict(record["details"]),
        routed_at=record["routed_at"],
        traceparent=traceparent,
    )


def _escalation(destination: Destination, record: Mapping[str, Any]) -> Escalation:
    return Escalation(
        task_id=record["task_id"],
        event_id=record["event_id"],
        event_type=record["event_type"],
        kommunekode=destination.kommunekode,
        unit=destination.unit,
        subject_pseudonym=record["subject_pseudonym"],
        due_by=record["due_by"],
        escalated_at=record["escalated_at"],
        escalated_to=record["escalated_to"],
        level=record["level"],
        reason=record["reason"],
        notify_kommunekode=record["notify_kommunekode"],
    )


def acknowledgement(topic: str, task: Task, take_over: TakeOver) -> Outgoing:
    """task_taken_over for ``task``: keyed by pseudonym, the task's trace carried over."""
    record = {
        "task_id": task.task_id,
        "event_id": task.event_id,
        "unit": task.unit,
        "kommunekode": task.kommunekode,
        "subject_pseudonym": task.subject_pseudonym,
        "taken_over_by": take_over.taken_over_by,
        "taken_over_at": take_over.taken_over_at,
        "note": take_over.note,
    }
    headers: list[tuple[str, str | bytes | None]] = [
        *schemas.build_headers(
            ce_id=f"{task.task_id}/taken-over",
            ce_type=str(schemas.event_type_of("task_taken_over")),
            ce_source=f"/ungebus/{COMPONENT}/{task.kommunekode}/{task.unit}",
            ce_time=take_over.taken_over_at,
            ce_subject=task.subject_pseudonym,
        )
    ]
    if task.traceparent:
        headers.append(("traceparent", task.traceparent.encode()))
    return Outgoing(
        topic, task.subject_pseudonym.encode(), schemas.encode("task_taken_over", record), headers
    )


def dead_letter(
    topic: str,
    rejected: Rejected,
    *,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Headers | None,
    now: dt.datetime,
    limits: RecordLimits,
) -> Outgoing:
    """The rejected record with its reason and original bytes (or, too large to copy, their
    digest and size), for ``deadletter``."""
    source = Received(
        source_topic, source_partition, source_offset, key, value, list(headers or ())
    )
    return records.dead_letter(
        topic,
        source,
        reason=rejected.reason,
        error_type=rejected.error_type,
        component=COMPONENT,
        event_id=rejected.event_id,
        now=now,
        limits=limits,
    )
