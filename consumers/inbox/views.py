"""What the page and the API show of a task: the allowed fields only, with the clock on it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from consumers.inbox import labels
from consumers.inbox.take_over import MAX_NOTE
from consumers.inbox.tasks import Escalation, InboxTask, describe_time_left, overdue, time_left

NOT_DISCLOSED = "not disclosed to this unit"


def zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def local(moment: dt.datetime, tz: dt.tzinfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class EscalationView:
    task_id: str
    event_kind: str
    level: int
    escalated_to: str
    reason: str
    escalated_at: str
    due_by: str
    notify: str | None


@dataclass(frozen=True)
class TaskView:
    task_id: str
    event_kind: str
    name: str | None
    cpr: str | None
    sender: str
    basis: str
    basis_kind: str
    consent_id: str | None
    priority: str
    due_by: str
    time_left: str
    overdue: bool
    routed_at: str
    policy_version: str
    fields: list[tuple[str, str]]
    taken_over_by: str | None
    taken_over_at: str | None
    note: str | None
    escalations: list[EscalationView]

    @property
    def young_person(self) -> str:
        shown = [part for part in (self.name, self.cpr) if part and part != "—"]
        return ", ".join(shown) if shown else NOT_DISCLOSED


def escalation_view(e: Escalation, tz: dt.tzinfo) -> EscalationView:
    return EscalationView(
        task_id=e.task_id,
        event_kind=labels.event_kind(e.event_type),
        level=e.level,
        escalated_to="the unit's lead" if e.escalated_to == "unit_lead" else "the sender",
        reason=e.reason,
        escalated_at=local(e.escalated_at, tz),
        due_by=local(e.due_by, tz),
        notify=labels.municipality(e.notify_kommunekode) if e.notify_kommunekode else None,
    )


def task_view(item: InboxTask, now: dt.datetime, tz: dt.tzinfo) -> TaskView:
    task, take_over = item.task, item.take_over
    return TaskView(
        task_id=task.task_id,
        event_kind=labels.event_kind(task.event_type),
        name=labels.detail(task.details, labels.NAME),
        cpr=labels.detail(task.details, labels.CPR),
        sender=labels.sender(task.details) or NOT_DISCLOSED,
        basis=task.basis.citation,
        basis_kind="consent" if task.basis.kind == "consent" else "statute",
        consent_id=task.consent_id,
        priority=task.priority,
        due_by=local(task.due_by, tz),
        time_left=describe_time_left(task.due_by, now),
        overdue=take_over is None and overdue(task.due_by, now),
        routed_at=local(task.routed_at, tz),
        policy_version=task.policy_version,
        fields=labels.fields(task.details),
        taken_over_by=take_over.taken_over_by if take_over else None,
        taken_over_at=local(take_over.taken_over_at, tz) if take_over else None,
        note=take_over.note if take_over else None,
        escalations=[escalation_view(e, tz) for e in item.escalations],
    )


# -- the JSON API's shapes ---------------------------------------------------------------------


class BasisOut(BaseModel):
    kind: str
    id: str
    citation: str


class TakeOverOut(BaseModel):
    taken_over_by: str
    taken_over_at: dt.datetime
    note: str | None


class EscalationOut(BaseModel):
    task_id: str
    event_id: str
    event_type: str
    level: int
    escalated_to: str
    reason: str
    due_by: dt.datetime
    escalated_at: dt.datetime
    notify_kommunekode: str | None


class TaskOut(BaseModel):
    task_id: str
    event_id: str
    event_type: str
    event_kind: str
    kommunekode: str
    unit: str
    basis: BasisOut
    consent_id: str | None
    priority: str
    policy_version: str
    subject_pseudonym: str
    due_by: dt.datetime
    overdue: bool
    seconds_left: int
    routed_at: dt.datetime
    details: dict[str, Any]  # the allowed fields only, dotted path -> value
    labels: dict[str, str]  # dotted path -> what the page calls it
    taken_over: TakeOverOut | None
    escalations: list[EscalationOut]


class TaskList(BaseModel):
    kommunekode: str
    unit: str
    tasks: list[TaskOut]


class EscalationList(BaseModel):
    kommunekode: str
    unit: str
    escalations: list[EscalationOut]


class TakeOverIn(BaseModel):
    note: str | None = Field(
        default=None,
        max_length=MAX_NOTE,
        description="what the caseworker did or agreed, for the task's history",
    )


def escalation_out(e: Escalation) -> EscalationOut:
    return EscalationOut(
        task_id=e.task_id,
        event_id=e.event_id,
        event_type=e.event_type,
        level=e.level,
        escalated_to=e.escalated_to,
        reason=e.reason,
        due_by=e.due_by,
        escalated_at=e.escalated_at,
        notify_kommunekode=e.notify_kommunekode,
    )


def task_out(item: InboxTask, now: dt.datetime) -> TaskOut:
    task, take_over = item.task, item.take_over
    details: Mapping[str, str] = task.details
    return TaskOut(
        task_id=task.task_id,
        event_id=task.event_id,
        event_type=task.event_type,
        event_kind=labels.event_kind(task.event_type),
        kommunekode=task.kommunekode,
        unit=task.unit,
        basis=BasisOut(kind=task.basis.kind, id=task.basis.id, citation=task.basis.citation),
        consent_id=task.consent_id,
        priority=task.priority,
        policy_version=task.policy_version,
        subject_pseudonym=task.subject_pseudonym,
        due_by=task.due_by,
        overdue=take_over is None and overdue(task.due_by, now),
        seconds_left=int(time_left(task.due_by, now).total_seconds()),
        routed_at=task.routed_at,
        details={path: labels.parse(text) for path, text in details.items()},
        labels={path: labels.label(path) for path in details},
        taken_over=(
            TakeOverOut(
                taken_over_by=take_over.taken_over_by,
                taken_over_at=take_over.taken_over_at,
                note=take_over.note,
            )
            if take_over
            else None
        ),
        escalations=[escalation_out(e) for e in item.escalations],
    )
