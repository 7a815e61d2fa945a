"""What a caseworker's inbox holds: tasks, escalations, take-overs; and the clock on them.

Plain values and pure functions: no Kafka, no database, no clock (``now`` is passed in).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}


@dataclass(frozen=True)
class Basis:
    kind: str  # statute | consent
    id: str
    citation: str


@dataclass(frozen=True)
class Task:
    """A routed task as the router wrote it, plus the trace it belongs to."""

    task_id: str
    event_id: str
    event_type: str
    kommunekode: str
    unit: str
    basis: Basis
    consent_id: str | None
    due_by: dt.datetime
    priority: str
    policy_version: str
    subject_pseudonym: str
    details: Mapping[str, str]  # dotted path -> JSON text: only what the policy allows
    routed_at: dt.datetime
    traceparent: str | None = None


@dataclass(frozen=True)
class Escalation:
    """Nobody took a task over in time; shown to the unit whose escalation topic carried it."""

    task_id: str
    event_id: str
    event_type: str
    kommunekode: str  # the inbox's municipality and unit (the topic's), who sees it
    unit: str
    subject_pseudonym: str
    due_by: dt.datetime
    escalated_at: dt.datetime
    escalated_to: str  # unit_lead | sender
    level: int
    reason: str
    notify_kommunekode: str | None = None


@dataclass(frozen=True)
class TakeOver:
    taken_over_by: str  # staff identifier, not a name
    taken_over_at: dt.datetime
    note: str | None = None


@dataclass(frozen=True)
class InboxTask:
    """A task as the inbox shows it: the task, whether and by whom it was taken over."""

    task: Task
    take_over: TakeOver | None = None
    escalations: tuple[Escalation, ...] = field(default_factory=tuple)

    @property
    def is_open(self) -> bool:
        return self.take_over is None


def time_left(due_by: dt.datetime, now: dt.datetime) -> dt.timedelta:
    """Negative once the task is overdue."""
    return due_by - now


def overdue(due_by: dt.datetime, now: dt.datetime) -> bool:
    return now > due_by


def describe_time_left(due_by: dt.datetime, now: dt.datetime) -> str:
    """'2 days 3 h left', '40 min left', 'overdue by 1 day 2 h'."""
    left = time_left(due_by, now)
    words = _duration(abs(left))
    return f"overdue by {words}" if left < dt.timedelta(0) else f"{words} left"


def _duration(span: dt.timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        day_word = "day" if days == 1 else "days"
        return f"{days} {day_word} {hours} h" if hours else f"{days} {day_word}"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def inbox_order(tasks: Iterable[InboxTask], now: dt.datetime) -> list[InboxTask]:
    """Overdue first, then by priority, then the nearest due-by."""
    return sorted(
        tasks,
        key=lambda t: (
            not overdue(t.task.due_by, now),
            PRIORITY_RANK.get(t.task.priority, len(PRIORITY_RANK)),
            t.task.due_by,
            t.task.task_id,
        ),
    )
