"""The task store on SQLite: migrated by Alembic, each task once, take-overs kept."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from consumers.inbox.erasures import ErasureRow
from consumers.inbox.store import Base, TaskStore
from consumers.inbox.tasks import Basis, Escalation, TakeOver, Task

NOW = dt.datetime(2026, 11, 30, 12, 0, 0, 123000, tzinfo=dt.UTC)


def task(task_id: str, unit: str = "youth_unit", **changes: object) -> Task:
    base = Task(
        task_id=task_id,
        event_id=f"event-{task_id}",
        event_type="dk.ungebus.dropout_notice.v1",
        kommunekode="161",
        unit=unit,
        basis=Basis("statute", "kui_12c", "KUI § 12 c"),
        consent_id=None,
        due_by=NOW + dt.timedelta(days=5),
        priority="high",
        policy_version="1",
        subject_pseudonym="ab" * 32,
        details={"status": '"dropped_out"'},
        routed_at=NOW,
        traceparent=None,
    )
    return replace(base, **changes)


def escalation(task_id: str, level: int = 1, unit: str = "youth_unit") -> Escalation:
    return Escalation(
        task_id=task_id,
        event_id=f"event-{task_id}",
        event_type="dk.ungebus.dropout_notice.v1",
        kommunekode="161",
        unit=unit,
        subject_pseudonym="ab" * 32,
        due_by=NOW,
        escalated_at=NOW + dt.timedelta(days=1),
        escalated_to="unit_lead",
        level=level,
        reason="late",
    )


def test_the_migrated_schema_matches_the_mapped_classes(store: TaskStore) -> None:
    assert ErasureRow.__table__ in Base.metadata.tables.values()  # mapped in its own module
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_a_task_delivered_twice_is_stored_once_and_round_trips(store: TaskStore) -> None:
    store.save([task("a"), task("a")], [], received_at=NOW)
    store.save([task("a")], [], received_at=NOW)
    assert store.count_tasks() == 1
    found = store.task("161", "youth_unit", "a")
    assert found is not None and found.task == task("a")
    assert found.task.due_by.tzinfo == dt.UTC


def test_a_newer_routing_updates_details_but_never_the_take_over(store: TaskStore) -> None:
    store.save([task("a")], [], received_at=NOW)
    store.mark_taken_over("a", TakeOver("yu-1", NOW, None))
    newer = task("a", routed_at=NOW + dt.timedelta(hours=1), details={"status": '"at_risk"'})
    older = task("a", routed_at=NOW - dt.timedelta(hours=1), details={"status": '"old"'})
    store.save([newer], [], received_at=NOW)
    store.save([older], [], received_at=NOW)
    found = store.task("161", "youth_unit", "a")
    assert found is not None
    assert found.task.details == {"status": '"at_risk"'}
    assert found.take_over == TakeOver("yu-1", NOW, None)


def test_each_unit_sees_only_its_own_tasks(store: TaskStore) -> None:
    store.save([task("y"), task("j", unit="jobcentre")], [], received_at=NOW)
    assert [t.task.task_id for t in store.open_tasks("161", "youth_unit")] == ["y"]
    assert store.task("161", "youth_unit", "j") is None
    assert store.task("151", "jobcentre", "j") is None
    assert store.task("161", "jobcentre", "j") is not None


def test_the_first_take_over_wins(store: TaskStore) -> None:
    store.save([task("a")], [], received_at=NOW)
    first = store.mark_taken_over("a", TakeOver("yu-1", NOW, "phoned"))
    second = store.mark_taken_over("a", TakeOver("yu-2", NOW + dt.timedelta(minutes=1), None))
    assert first == second == TakeOver("yu-1", NOW, "phoned")
    assert store.open_tasks("161", "youth_unit") == []
    assert [t.task.task_id for t in store.recently_taken_over("161", "youth_unit")] == ["a"]


def test_escalations_are_stored_once_and_leave_when_the_task_is_taken_over(
    store: TaskStore,
) -> None:
    store.save([task("a")], [escalation("a"), escalation("a")], received_at=NOW)
    store.save([], [escalation("a"), escalation("a", level=2), escalation("z")], received_at=NOW)
    shown = store.escalations("161", "youth_unit")
    assert sorted((e.task_id, e.level) for e in shown) == [("a", 1), ("a", 2), ("z", 1)]
    assert store.escalations("161", "jobcentre") == []
    found = store.task("161", "youth_unit", "a")
    assert found is not None and [e.level for e in found.escalations] == [1, 2]
    store.mark_taken_over("a", TakeOver("yu-1", NOW, None))
    assert [e.task_id for e in store.escalations("161", "youth_unit")] == ["z"]
