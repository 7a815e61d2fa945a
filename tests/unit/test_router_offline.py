"""Router.handle without Kafka: what it writes for a record, with plain dicts as its tables."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

import schemas
from bus.topics import Topics
from streams.consent import ConsentState
from streams.decide import InboundEvent, decide
from streams.outputs import InMessage, Output
from streams.policy import load_policy
from streams.router import Router, SubjectStore
from tests.unit import records
from tests.unit.records import OCCURRED

POLICY = load_policy()
TOPICS = Topics("t.")
NOW = OCCURRED + dt.timedelta(minutes=5)
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def router() -> Router:
    return Router(POLICY, TOPICS, clock=lambda: NOW)


@pytest.fixture
def store() -> SubjectStore:
    return SubjectStore({}, {}, {})


def _person() -> dict[str, Any]:
    return {"pseudonym": uuid.uuid4().hex * 2, "event_id": str(uuid.uuid4())}


def _message(topic: str, name: str, record: dict[str, Any]) -> InMessage:
    return InMessage(
        topic=topic,
        partition=0,
        offset=7,
        key=record["envelope"]["subject"]["pseudonym"].encode(),
        value=schemas.encode(name, record),
        headers=[*schemas.cloudevent_headers(record), ("traceparent", TRACEPARENT.encode())],
    )


def _decoded(output: Output) -> dict[str, Any]:
    assert output.value is not None
    return schemas.decode(output.value).record


def test_a_routed_event_gives_its_tasks_then_the_audit(router: Router, store: SubjectStore) -> None:
    record = records.release_planning("prison", age=22, residence="167", **_person())
    out = router.handle(
        _message(TOPICS.inbound("release_planning"), "release_planning", record), store
    )
    decision = decide(InboundEvent("release_planning", record), ConsentState(), POLICY, NOW)
    *tasks, audit = out
    assert len(tasks) == 3  # jobcentre, social services, youth unit
    assert [t.topic for t in tasks] == [TOPICS.tasks("167", r.unit) for r in decision.routes]
    for task, route in zip(tasks, decision.routes, strict=True):
        value = _decoded(task)
        assert value["task_id"] == route.task_id
        assert value["details"] == dict(route.details)
        assert value["due_by"] == route.due_by
        assert task.key == record["envelope"]["subject"]["pseudonym"].encode()
        assert task.header("ce_type") == "dk.ungebus.routed_task.v1"
        assert task.header("ce_id") == route.task_id
        assert task.header("traceparent") == TRACEPARENT
        assert task.labels["ungebus.rule_id"] == route.rule_id
    assert audit.topic == TOPICS.audit_routing
    assert _decoded(audit)["decision"] == "routed"
    task_ids = [r.task_id for r in decision.routes]
    expected_id = schemas.decision_id(
        record["envelope"]["event_id"], POLICY.version, "routed", task_ids
    )
    assert audit.header("ce_id") == expected_id == schemas.decision_id_of(_decoded(audit))


def test_the_same_event_again_is_a_duplicate(router: Router, store: SubjectStore) -> None:
    record = records.dropout_notice(age=16, **_person())
    message = _message(TOPICS.inbound("dropout_notice"), "dropout_notice", record)
    assert len(router.handle(message, store)) == 2
    (audit,) = router.handle(message, store)
    assert _decoded(audit)["decision"] == "duplicate"


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        (TOPICS.inbound("handover"), "does not belong on topic t.inbound.handover"),
        (TOPICS.consent, "does not belong on topic t.consent.events"),
        ("t.somewhere.else", "does not belong on topic t.somewhere.else"),
    ],
)
def test_a_record_on_the_wrong_topic_is_a_dead_letter(
    router: Router, store: SubjectStore, topic: str, reason: str
) -> None:
    record = records.dropout_notice(age=16, **_person())
    (letter,) = router.handle(_message(topic, "dropout_notice", record), store)
    assert letter.topic == TOPICS.deadletter
    value = _decoded(letter)
    assert value["error_type"] == "Rejected"
    assert reason in value["reason"]


def test_a_held_event_is_routed_when_its_consent_arrives(
    router: Router, store: SubjectStore
) -> None:
    person = _person()
    record = records.handover("municipality", to="161", age=20, **person)
    (held,) = router.handle(_message(TOPICS.inbound("handover"), "handover", record), store)
    assert _decoded(held)["decision"] == "held"
    envelope = records.envelope(
        "consent_granted", age=20, source_kind="municipality", source_id="161",
        pseudonym=person["pseudonym"],
    )  # fmt: skip
    grant = {
        "envelope": envelope,
        "consent_id": "c-1",
        "purpose": "adult_relocation",
        "recipient_unit": "youth_unit",
        "recipient_kommunekode": "161",
        "given_by": "young_person",
        "valid_until": dt.date(2027, 12, 31),
        "evidence_reference": "doc-1",
    }
    task, audit = router.handle(_message(TOPICS.consent, "consent_granted", grant), store)
    assert task.topic == TOPICS.tasks("161", "youth_unit")
    assert _decoded(task)["consent_id"] == "c-1"
    assert task.header("traceparent") == TRACEPARENT  # the held event's own trace
    assert _decoded(audit)["decision"] == "routed"


@pytest.mark.parametrize("size", [100, schemas.DEFAULT_MAX_SIZE - 10])
def test_a_record_that_cannot_be_decoded_is_a_dead_letter_whatever_its_size(
    router: Router, store: SubjectStore, size: int
) -> None:
    garbage = InMessage(
        topic=TOPICS.inbound("dropout_notice"), partition=2, offset=41, key=b"k",
        value=b"\x00" + b"\xff" * (size - 1), headers=[("ce_id", b"x")],
    )  # fmt: skip

    [letter] = router.handle(garbage, store)

    record = _decoded(letter)
    assert letter.topic == TOPICS.deadletter
    assert (record["source_topic"], record["source_partition"], record["source_offset"]) == (
        TOPICS.inbound("dropout_notice"), 2, 41,
    )  # fmt: skip
    if size < 1000:  # the original is kept in the letter
        assert record["original_value"] == garbage.value
    else:  # too large to copy next to its context: the letter says where it stays
        assert record["original_value"] is None
        assert f"{size} bytes, is too large to copy" in record["reason"]
        assert f"it stays at {TOPICS.inbound('dropout_notice')}/2/41" in record["reason"]
