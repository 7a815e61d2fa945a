"""The handover tracker's fold: open, close, escalate, reject — pure, with a test clock."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import schemas
from bus.limits import RecordLimits
from bus.topics import Topics
from streams.handover.state import Acknowledgement, Handovers, OpenTask
from streams.handover.store import HandoverStore
from streams.handover.tracker import Tracker, count_open
from streams.routing.outputs import InMessage
from streams.runtime.state import StagedTables

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
PSEUDONYM = "ab" * 32


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def _task(task_id: str = "t-1", **changes: Any) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "event_id": "e-1",
        "event_type": "dk.ungebus.handover.v1",
        "unit": "family_services",
        "kommunekode": "161",
        "due_by": T0 + dt.timedelta(hours=1),
        "subject_pseudonym": PSEUDONYM,
        "details": {"from_kommunekode": '"153"', "origin": '"municipality"'},
        "sealed_details": None,
        **changes,
    }


def _ack(
    clock: Clock, task_id: str = "t-1", topic: str = "t.task-acks.161", **changes: Any
) -> Acknowledgement:
    record = {
        "task_id": task_id,
        "event_id": "e-1",
        "unit": "family_services",
        "kommunekode": "161",
        "subject_pseudonym": PSEUDONYM,
        "taken_over_by": "cw-7",
        "taken_over_at": clock.now,
        "note": None,
        "sealed_note": None,
        **changes,
    }
    wire = schemas.encode("task_taken_over", record)
    return Acknowledgement(record, wire, clock.now, topic, (0, 5))


def _decoded(outputs: list[Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(o.topic, *schemas.decode(o.value)[::2]) for o in outputs]  # type: ignore[misc]


def _tracker() -> tuple[Tracker, Clock]:
    clock = Clock()
    return Tracker(Topics("t."), unknown_ack_grace=dt.timedelta(minutes=5), clock=clock), clock


def test_overdue_task_escalates_once_to_the_lead_and_tells_the_sender() -> None:
    tracker, clock = _tracker()
    state, out = tracker.task_routed(Handovers(), _task(), None)
    assert out == []
    state, out = tracker.tick(PSEUDONYM, state)
    assert out == []  # not due yet
    clock.now = T0 + dt.timedelta(hours=2)
    state, out = tracker.tick(PSEUDONYM, state)
    decoded = _decoded(out)
    assert [(topic, name) for topic, name, _ in decoded] == [
        ("t.escalations.161.family_services", "task_escalated"),
        ("t.handovers.153", "handover_status"),
    ]
    assert decoded[0][2]["escalated_to"] == "unit_lead"
    assert decoded[1][2]["status"] == "not_taken_over"
    _state, again = tracker.tick(PSEUDONYM, state)
    assert again == []


def test_take_over_closes_the_task_and_tells_the_sender() -> None:
    tracker, clock = _tracker()
    state, _ = tracker.task_routed(Handovers(), _task(), None)
    state, out = tracker.taken_over(state, _ack(clock), None)
    assert not state.open and "t-1" in state.closed
    ((topic, name, record),) = _decoded(out)
    assert (topic, name, record["status"], record["taken_over_by"]) == (
        "t.handovers.153", "handover_status", "taken_over", "cw-7",
    )  # fmt: skip
    clock.now = T0 + dt.timedelta(days=3)
    _state, late = tracker.tick(PSEUDONYM, state)
    assert late == []  # closed: never escalated


def test_repeated_acknowledgement_changes_nothing() -> None:
    tracker, clock = _tracker()
    state, _ = tracker.task_routed(Handovers(), _task(), None)
    state, _ = tracker.taken_over(state, _ack(clock), None)
    again, out = tracker.taken_over(state, _ack(clock), None)
    assert (again, out) == (state, [])


def test_acknowledgement_from_the_wrong_unit_is_rejected_and_not_applied() -> None:
    tracker, clock = _tracker()
    state, _ = tracker.task_routed(Handovers(), _task(), None)
    after, out = tracker.taken_over(state, _ack(clock, unit="jobcentre"), None)
    assert after == state
    ((topic, name, letter),) = _decoded(out)
    assert (topic, name, letter["component"]) == ("t.deadletter", "dead_letter", "tracker")
    assert "belongs to family_services in 161" in letter["reason"]
    assert (letter["source_partition"], letter["source_offset"]) == (0, 5)


def test_take_over_on_another_municipalitys_topic_is_rejected_naming_both() -> None:
    # Written by 153's inbox for a task of 161, claiming to be 161's unit: only the topic tells.
    tracker, clock = _tracker()
    state, _ = tracker.task_routed(Handovers(), _task(), None)
    after, out = tracker.taken_over(state, _ack(clock, topic="t.task-acks.153"), None)
    assert after == state  # still open, nothing closed
    ((topic, name, letter),) = _decoded(out)
    assert (topic, name, letter["error_type"]) == ("t.deadletter", "dead_letter",
                                                   "RejectedAcknowledgement")  # fmt: skip
    assert letter["source_topic"] == "t.task-acks.153"
    assert letter["reason"] == (
        "rejected take-over of task t-1: it belongs to municipality 161, the take-over came on "
        "the take-over topic of municipality 153 (t.task-acks.153); not applied"
    )
    assert PSEUDONYM not in letter["reason"]


def test_early_take_over_on_another_municipalitys_topic_is_rejected_when_its_task_comes() -> None:
    tracker, clock = _tracker()
    state, out = tracker.taken_over(Handovers(), _ack(clock, topic="t.task-acks.153"), None)
    assert out == [] and "t-1" in state.early
    state, out = tracker.task_routed(state, _task(), None)
    assert "t-1" in state.open and not state.closed and not state.early
    ((_topic, _name, letter),) = _decoded(out)
    assert "the take-over topic of municipality 153" in letter["reason"]


def test_a_take_over_record_read_from_a_municipalitys_topic_is_handled_as_one() -> None:
    tracker, clock = _tracker()
    store = HandoverStore(StagedTables.in_memory("handovers", max_entry_bytes=1_000_000))
    ack = _ack(clock)
    message = InMessage("t.task-acks.161", 0, 3, PSEUDONYM.encode(), ack.wire, [])
    assert tracker.handle(message, store) == []  # kept until its task comes
    early = Handovers.from_json(store.tables.get("handovers", PSEUDONYM)).early["t-1"]
    assert (early.topic, early.position) == ("t.task-acks.161", (0, 3))


def test_acknowledgement_before_its_task_waits_then_closes_it() -> None:
    tracker, clock = _tracker()
    state, out = tracker.taken_over(Handovers(), _ack(clock), None)
    assert out == [] and "t-1" in state.early
    state, out = tracker.task_routed(state, _task(), None)
    assert not state.open and not state.early and "t-1" in state.closed
    assert [name for _, name, _ in _decoded(out)] == ["handover_status"]


def test_acknowledgement_for_a_task_never_routed_is_rejected_after_the_grace() -> None:
    tracker, clock = _tracker()
    state, _ = tracker.taken_over(Handovers(), _ack(clock, task_id="ghost"), None)
    clock.now = T0 + dt.timedelta(minutes=4)
    state, out = tracker.tick(PSEUDONYM, state)
    assert out == []
    clock.now = T0 + dt.timedelta(minutes=6)
    state, out = tracker.tick(PSEUDONYM, state)
    ((_topic, _name, letter),) = _decoded(out)
    assert "no such task was routed" in letter["reason"] and state.empty


def test_state_survives_its_json_round_trip() -> None:
    tracker, clock = _tracker()
    state, _ = tracker.task_routed(Handovers(), _task(), "00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    state, _ = tracker.taken_over(state, _ack(clock, task_id="early"), None)
    assert Handovers.from_json(state.to_json()) == state


def test_task_without_a_sending_municipality_tells_no_sender() -> None:
    tracker, clock = _tracker()
    dropout = _task(details={}, event_type="dk.ungebus.dropout_notice.v1", unit="youth_unit")
    state, _ = tracker.task_routed(Handovers(), dropout, None)
    clock.now = T0 + dt.timedelta(hours=2)
    _state, out = tracker.tick(PSEUDONYM, state)
    assert [name for _, name, _ in _decoded(out)] == ["task_escalated"]


def test_open_and_overdue_tasks_are_counted_per_unit_and_municipality() -> None:
    now = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)

    def task(unit: str, kommunekode: str, due_in_hours: int) -> OpenTask:
        due_by = now + dt.timedelta(hours=due_in_hours)
        return OpenTask(str(uuid.uuid4()), "e", "t", unit, kommunekode, due_by)

    tasks = [
        task("youth_unit", "161", -1),
        task("youth_unit", "161", 5),
        task("jobcentre", "153", 0),
    ]
    assert count_open(tasks, now) == {("youth_unit", "161"): (2, 1), ("jobcentre", "153"): (1, 1)}


def test_a_task_with_an_id_longer_than_the_bus_makes_is_a_dead_letter_and_opens_nothing() -> None:
    tracker, _clock = _tracker()
    budget = RecordLimits().value_budget(b"", [])
    store = HandoverStore(StagedTables.in_memory("handovers", max_entry_bytes=budget))
    task = {
        **_task("t" * 300_000),
        "event_type": "dk.ungebus.handover.v1",
        "basis": {"kind": "statute", "id": "kui_12c", "citation": "KUI § 12 c"},
        "consent_id": None,
        "priority": "high",
        "policy_version": "1",
        "routed_at": T0,
    }
    message = InMessage(
        "t.tasks.161.family_services", 1, 9, PSEUDONYM.encode(),
        schemas.encode("routed_task", task), [],
    )  # fmt: skip

    ((topic, name, letter),) = _decoded(tracker.handle(message, store))

    assert (topic, name, letter["error_type"]) == ("t.deadletter", "dead_letter", "ValueError")
    assert "its task_id is longer than 256 characters" in letter["reason"]
    assert store.tables.get("handovers", PSEUDONYM) is None


def test_an_early_take_over_kept_without_its_topic_is_refused_when_its_task_comes() -> None:
    # State written before take-overs had a topic per municipality: nobody can tell who wrote it.
    tracker, clock = _tracker()
    state, _ = tracker.taken_over(Handovers(), _ack(clock), None)
    raw = json.loads(state.to_json())
    del raw["early"]["t-1"]["topic"]
    state = Handovers.from_json(json.dumps(raw).encode())
    state, out = tracker.task_routed(state, _task(), None)
    assert "t-1" in state.open and not state.closed
    ((_topic, _name, letter),) = _decoded(out)
    assert "no municipality's take-over topic" in letter["reason"]


def test_an_erased_persons_open_tasks_are_forgotten_and_never_escalated() -> None:
    from bus.erasure.fact import Erasure
    from bus.erasure.record import erasure_record

    tracker, clock = _tracker()
    store = HandoverStore(StagedTables.in_memory(*HandoverStore.TABLES))
    other = "cd" * 32
    for who, task_id in ((PSEUDONYM, "t-1"), (other, "t-2")):
        task = _task(task_id, subject_pseudonym=who)
        routed = {
            "basis": {"kind": "statute", "id": "kui_12c", "citation": "KUI § 12 c"},
            "consent_id": None,
            "priority": "high",
            "policy_version": "1",
            "routed_at": T0,
        }
        value = schemas.encode("routed_task", {**task, **routed})  # fmt: skip
        tracker.handle(
            InMessage("t.tasks.161.family_services", 0, 1, who.encode(), value, []), store
        )
    erasure = erasure_record("t.erasures", Erasure(PSEUDONYM, T0, "request", "admin", "d@h", 1))

    out = tracker.handle(InMessage("t.erasures", 0, 2, erasure.key, erasure.value, []), store)

    assert out == []
    assert store.get(PSEUDONYM).empty and "t-2" in store.get(other).open
    clock.now = T0 + dt.timedelta(hours=2)
    escalated = tracker.expire(store, [PSEUDONYM, other])
    assert {schemas.decode(o.value).record["task_id"] for o in escalated} == {"t-2"}
