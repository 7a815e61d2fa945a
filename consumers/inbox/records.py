"""The wire boundary: Kafka records in (tasks, escalations), acknowledgements out.

Reading never raises: a record the inbox cannot use becomes ``Rejected`` with a reason, for the
dead-letter topic (``bus.keystore.KeyStoreError`` aside: the key store did not answer, the batch
is read again). A task's details arrive sealed with the person's data key (``sealed_details``,
version 2) and are unsealed here, with the inbox's read access to keys; a task whose person's
key is erased is :class:`PassedOver`. A take-over's note leaves sealed with the person's
existing key (the inbox may read keys, never create them). Reasons and codes never quote the
record's content (no CPR in logs).
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
from bus.crypto import DataKey, Erased, Keyring, SealError, seal_with, sealed_header
from bus.limits import RecordLimits
from bus.records import Outgoing, Received
from bus.sealed_fields import unseal_map
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


@dataclass(frozen=True)
class PassedOver:
    """A task of a person whose data key is erased: not stored, since an erasure deletes the
    person's rows and a task stored after it would bring one back; not a dead letter either,
    as nothing about it can be fixed or retried."""

    task_id: str
    event_id: str
    kommunekode: str
    unit: str
    subject_pseudonym: str


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
    keyring: Keyring | None = None,
) -> Task | Escalation | Rejected | PassedOver:
    """A task or an escalation for ``destination``, or why the record cannot be one.
    ``keyring`` unseals a task's details (without one, sealed details read as erased)."""
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
    try:
        details = _details(record, keyring)
    except Erased:
        return PassedOver(
            record["task_id"], record["event_id"], record["kommunekode"], record["unit"],
            record["subject_pseudonym"],
        )  # fmt: skip
    except SealError as exc:
        return Rejected("seal:invalid", f"its sealed_details cannot be read: {exc}", event_id)
    return _task(record, details, header(headers, "traceparent"))


def _details(record: Mapping[str, Any], keyring: Keyring | None) -> dict[str, str]:
    """The task's details: sealed (version 2), or plain (written before sealing)."""
    sealed = record.get("sealed_details")
    if sealed is None:
        return dict(record["details"])
    if sealed_header(sealed).pseudonym != record["subject_pseudonym"]:
        raise SealError("sealed under another person's key than the task's subject")
    if keyring is None:
        raise Erased(record["subject_pseudonym"], "this inbox holds no data keys")
    return {**record["details"], **unseal_map(keyring, sealed)}


def _task(record: Mapping[str, Any], details: dict[str, str], traceparent: str | None) -> Task:
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
        details=details,
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


def acknowledgement(
    topic: str, task: Task, take_over: TakeOver, key: DataKey | None = None
) -> Outgoing:
    """task_taken_over for ``task``: keyed by pseudonym, the task's trace carried over; its
    note sealed with ``key`` (the person's existing data key), or left out without one."""
    note = take_over.note if key is not None else None
    record = {
        "task_id": task.task_id,
        "event_id": task.event_id,
        "unit": task.unit,
        "kommunekode": task.kommunekode,
        "subject_pseudonym": task.subject_pseudonym,
        "taken_over_by": take_over.taken_over_by,
        "taken_over_at": take_over.taken_over_at,
        "note": None,
        "sealed_note": seal_with(key, note.encode()) if key is not None and note else None,
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
