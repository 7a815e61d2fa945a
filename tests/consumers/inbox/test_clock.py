"""The clock on a task: time left, overdue, and the order caseworkers see."""

from __future__ import annotations

import datetime as dt

import pytest

from consumers.inbox.tasks import (
    Basis,
    InboxTask,
    Task,
    describe_time_left,
    inbox_order,
    overdue,
)

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("due_by", "words"),
    [
        (NOW + dt.timedelta(days=2, hours=3), "2 days 3 h left"),
        (NOW + dt.timedelta(days=1), "1 day left"),
        (NOW + dt.timedelta(hours=5, minutes=20), "5 h 20 min left"),
        (NOW + dt.timedelta(minutes=40, seconds=30), "40 min left"),
        (NOW, "0 min left"),
        (NOW - dt.timedelta(hours=3), "overdue by 3 h"),
        (NOW - dt.timedelta(days=1, hours=2), "overdue by 1 day 2 h"),
    ],
)
def test_describe_time_left(due_by: dt.datetime, words: str) -> None:
    assert describe_time_left(due_by, NOW) == words


def test_overdue_only_after_due_by() -> None:
    assert not overdue(NOW, NOW)
    assert overdue(NOW, NOW + dt.timedelta(seconds=1))


def _task(task_id: str, due_in: dt.timedelta, priority: str) -> InboxTask:
    return InboxTask(
        Task(
            task_id=task_id,
            event_id="e",
            event_type="dk.ungebus.dropout_notice.v1",
            kommunekode="161",
            unit="youth_unit",
            basis=Basis("statute", "kui_12c", "KUI § 12 c"),
            consent_id=None,
            due_by=NOW + due_in,
            priority=priority,
            policy_version="1",
            subject_pseudonym="p",
            details={},
            routed_at=NOW,
        )
    )


def test_inbox_order_overdue_first_then_priority_then_due_by() -> None:
    tasks = [
        _task("normal-soon", dt.timedelta(hours=2), "normal"),
        _task("urgent-later", dt.timedelta(days=3), "urgent"),
        _task("low-overdue", -dt.timedelta(hours=1), "low"),
        _task("high-overdue-longer", -dt.timedelta(days=1), "high"),
        _task("normal-sooner", dt.timedelta(hours=1), "normal"),
    ]
    assert [t.task.task_id for t in inbox_order(tasks, NOW)] == [
        "high-overdue-longer",
        "low-overdue",
        "urgent-later",
        "normal-sooner",
        "normal-soon",
    ]
