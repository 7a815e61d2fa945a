"""Router.handle without Kafka: what it writes for a record, with plain dicts as its tables."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import uuid
from typing import Any

import pytest

import schemas
from bus.limits import RecordLimits
from bus.topics import Topics
from streams.routing.consent import ConsentState
from streams.routing.decide import InboundEvent, decide
from streams.routing.outputs import InMessage, Output
from streams.routing.policy import load_policy
from streams.routing.router import Router, SubjectStore
from streams.runtime.state import StagedTables
from tests.support import records
from tests.support.records import OCCURRED

POLICY = load_policy()
TOPICS = Topics("t.")
NOW = OCCURRED + dt.timedelta(minutes=5)
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def router() -> Router:
    return Router(POLICY, TOPICS, records.senders(), clock=lambda: NOW)


@pytest.fixture
def store() -> SubjectStore:
    return SubjectStore(StagedTables.in_memory(*SubjectStore.TABLES))


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
    return schemas.decode(output.value, max_size=1_000_000).record  # a dead letter may be large


def test_a_routed_event_gives_its_tasks_then_the_audit(router: Router, store: SubjectStore) -> None:
    record = records.release_planning("prison", age=22, residence="167", **_person())
    out = router.handle(_message(TOPICS.inbound_events, "release_planning", record), store)
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
    message = _message(TOPICS.inbound_events, "dropout_notice", record)
    assert len(router.handle(message, store)) == 2
    (audit,) = router.handle(message, store)
    assert _decoded(audit)["decision"] == "duplicate"


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("t.inbound.handover", "does not belong on topic t.inbound.handover"),
        ("t.consent.events", "does not belong on topic t.consent.events"),
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


def _grant(pseudonym: str, source_id: str) -> dict[str, Any]:
    """Consent to the youth unit of 161 for an adult who moved, from municipality:source_id."""
    envelope = records.envelope(
        "consent_granted", age=20, source_kind="municipality", source_id=source_id,
        pseudonym=pseudonym,
    )  # fmt: skip
    return {
        "envelope": envelope,
        "consent_id": "c-1",
        "purpose": "adult_relocation",
        "recipient_unit": "youth_unit",
        "recipient_kommunekode": "161",
        "given_by": "young_person",
        "valid_until": dt.date(2027, 12, 31),
        "evidence_reference": "doc-1",
    }


def test_a_held_event_is_routed_when_its_consent_arrives(
    router: Router, store: SubjectStore
) -> None:
    person = _person()
    record = records.handover("municipality", to="161", age=20, **person)
    (held,) = router.handle(_message(TOPICS.inbound_events, "handover", record), store)
    assert _decoded(held)["decision"] == "held"
    grant = _grant(person["pseudonym"], source_id="161")
    task, audit = router.handle(_message(TOPICS.inbound_events, "consent_granted", grant), store)
    assert task.topic == TOPICS.tasks("161", "youth_unit")
    assert _decoded(task)["consent_id"] == "c-1"
    assert task.header("traceparent") == TRACEPARENT  # the held event's own trace
    assert _decoded(audit)["decision"] == "routed"


@pytest.mark.parametrize("size", [100, schemas.DEFAULT_MAX_SIZE - 10, 1_040_000])
def test_a_record_that_cannot_be_decoded_is_a_dead_letter_whatever_its_size(
    router: Router, store: SubjectStore, size: int
) -> None:
    garbage = InMessage(
        topic=TOPICS.inbound_events, partition=2, offset=41, key=b"k",
        value=b"\x00" + b"\xff" * (size - 1), headers=[("ce_id", b"x")],
    )  # fmt: skip

    [letter] = router.handle(garbage, store)

    record = _decoded(letter)
    assert letter.topic == TOPICS.deadletter
    assert (record["source_topic"], record["source_partition"], record["source_offset"]) == (
        TOPICS.inbound_events, 2, 41,
    )  # fmt: skip
    assert record["original_value_sha256"] == hashlib.sha256(garbage.value).hexdigest()
    assert record["original_value_size"] == size
    assert RecordLimits().too_large(letter.topic, letter.key, letter.value, letter.headers) is None
    if size <= schemas.DEFAULT_MAX_SIZE:  # the original is kept in the letter
        assert record["original_value"] == garbage.value
    else:  # too large to copy next to its context: the letter says where it stays
        assert record["original_value"] is None
        assert (
            f"value {size:,} bytes, SHA-256 {record['original_value_sha256']}" in (record["reason"])
        )
        assert "too large to copy" in record["reason"]
        assert f"it stays at {TOPICS.inbound_events}/2/41" in record["reason"]


# -- bounded per record: too large to write or to keep is a dead letter, and leaves no state -----
LIMITS = RecordLimits()


@pytest.fixture
def bounded() -> SubjectStore:
    budget = LIMITS.value_budget(b"", [])
    return SubjectStore(StagedTables.in_memory(*SubjectStore.TABLES, max_entry_bytes=budget))


def _then_routed(router: Router, store: SubjectStore, record: dict[str, Any]) -> None:
    """The same event, of a normal size, is routed afterwards: nothing of the first stayed."""
    normal = records.dropout_notice(
        age=16,
        pseudonym=record["envelope"]["subject"]["pseudonym"],
        event_id=record["envelope"]["event_id"],
    )
    outputs = router.handle(_message(TOPICS.inbound_events, "dropout_notice", normal), store)
    assert [o.topic for o in outputs] == [TOPICS.tasks("161", "youth_unit"), TOPICS.audit_routing]


def test_an_event_whose_task_is_too_large_to_encode_is_a_dead_letter_and_leaves_no_state(
    router: Router, bounded: SubjectStore
) -> None:
    record = records.dropout_notice(age=16, **_person())
    record["institution_name"] = "\x01" * 300_000  # a task shows it JSON-escaped: 1.8 MB
    message = _message(TOPICS.inbound_events, "dropout_notice", record)

    (letter,) = router.handle(message, bounded)

    value = _decoded(letter)
    assert value["error_type"] == "TooLarge"
    assert "its outputs are too large to write: routed_task: encoded record is" in value["reason"]
    assert value["original_value"] == message.value
    _then_routed(router, bounded, record)


def test_an_event_whose_outputs_are_over_the_producer_limit_is_a_dead_letter(
    router: Router, bounded: SubjectStore
) -> None:
    person = _person()
    record = records.dropout_notice(age=16, **person)
    message = _message(TOPICS.inbound_events, "dropout_notice", record)
    huge = ("traceparent", b"0" * 999_000)  # carried over to every output, as trace context
    message = dataclasses.replace(message, headers=[*message.headers[:-1], huge])

    (letter,) = router.handle(message, bounded)

    value = _decoded(letter)
    assert value["error_type"] == "TooLarge"
    topic = TOPICS.tasks("161", "youth_unit")
    assert f"its outputs are too large to write: a record for {topic} would be" in value["reason"]
    assert "over the producer's message.max.bytes of 1,000,000" in value["reason"]
    assert value["original_value"] is None and "too large to copy" in value["reason"]
    assert bounded.seen(person["pseudonym"]).occurred == ()
    _then_routed(router, bounded, record)


def test_an_event_too_large_to_hold_for_consent_is_a_dead_letter_and_nothing_is_held(
    router: Router, bounded: SubjectStore
) -> None:
    person = _person()
    record = records.handover("municipality", to="161", age=20, **person)
    record["case_reference"] = "x" * 760_000  # held as base64 in the held table: 1 MB

    (letter,) = router.handle(_message(TOPICS.inbound_events, "handover", record), bounded)

    value = _decoded(letter)
    assert value["error_type"] == "TooLarge"
    assert "it cannot be kept: the state it leaves for one person would be" in value["reason"]
    assert bounded.held(person["pseudonym"]) == ()
    assert bounded.seen(person["pseudonym"]).occurred == ()


def test_a_record_of_another_kind_on_the_inbound_topic_is_a_dead_letter(
    router: Router, store: SubjectStore
) -> None:
    record = records.dropout_notice(age=16, **_person())
    *_, audit = router.handle(_message(TOPICS.inbound_events, "dropout_notice", record), store)
    message = InMessage(
        TOPICS.inbound_events, 0, 9, audit.key, audit.value, audit.headers
    )  # a routing decision is no partner event
    (letter,) = router.handle(message, store)
    assert letter.topic == TOPICS.deadletter
    assert "a routing_decision record does not belong on topic" in _decoded(letter)["reason"]


def test_an_event_from_a_source_no_partner_may_claim_is_denied_and_audited(
    router: Router, store: SubjectStore
) -> None:
    record = records.dropout_notice(age=16, source_id="000000", **_person())
    (audit,) = router.handle(_message(TOPICS.inbound_events, "dropout_notice", record), store)
    assert audit.topic == TOPICS.audit_routing
    decided = _decoded(audit)
    assert (decided["decision"], decided["routes"]) == ("denied", [])
    assert "institution:000000" in decided["reason"]
    assert "not in the partner registry" in decided["reason"]
    # not remembered as seen: the same event from a real sender would still be routed
    assert record["envelope"]["event_id"] not in store.seen(decided["subject_pseudonym"])


def test_a_source_allowed_for_another_kind_only_is_denied(
    router: Router, store: SubjectStore
) -> None:
    # uu-vestegnen may send handovers, not release planning
    record = records.release_planning("psychiatric_ward", source_id="uu-vestegnen", **_person())
    (audit,) = router.handle(_message(TOPICS.inbound_events, "release_planning", record), store)
    assert _decoded(audit)["decision"] == "denied"


def test_a_consent_from_an_unknown_sender_is_not_applied(
    router: Router, store: SubjectStore
) -> None:
    person = _person()
    record = records.handover("municipality", to="161", age=20, **person)
    (held,) = router.handle(_message(TOPICS.inbound_events, "handover", record), store)
    assert _decoded(held)["decision"] == "held"
    forged = _grant(person["pseudonym"], source_id="999")  # no partner speaks for 999
    (audit,) = router.handle(_message(TOPICS.inbound_events, "consent_granted", forged), store)
    assert _decoded(audit)["decision"] == "denied"
    assert store.consents(person["pseudonym"]) == ConsentState()
    assert len(store.held(person["pseudonym"])) == 1  # still waiting for a real consent


def _erasure(pseudonym: str, key: str | None = None) -> InMessage:
    from bus.erasure.fact import Erasure
    from bus.erasure.record import erasure_record

    out = erasure_record(TOPICS.erasures, Erasure(pseudonym, NOW, "request", "admin", "d@h", 1))
    key_bytes = out.key if key is None else key.encode()
    return InMessage(TOPICS.erasures, 0, 3, key_bytes, out.value, [])


def test_an_erasure_forgets_the_persons_consents_held_events_and_seen_ids(
    router: Router, store: SubjectStore
) -> None:
    person, other = _person(), _person()
    for who in (person, other):
        held = records.handover("municipality", to="161", age=20, **who)
        router.handle(_message(TOPICS.inbound_events, "handover", held), store)
        # A consent to another municipality's unit: kept, and the hold still waits.
        grant = _grant(who["pseudonym"], source_id="161") | {"recipient_kommunekode": "167"}
        router.handle(_message(TOPICS.inbound_events, "consent_granted", grant), store)
    pseudonym = person["pseudonym"]
    assert store.held(pseudonym) and store.consents(pseudonym) != ConsentState()

    assert router.handle(_erasure(pseudonym), store) == []

    tables = store.tables
    assert [tables.get(t, pseudonym) for t in SubjectStore.TABLES] == [None, None, None]
    assert store.held(other["pseudonym"])  # the other person is untouched
    # A record on the erasures topic that is not an erasure of its key's person is a dead
    # letter, and forgets nobody.
    [letter] = router.handle(_erasure(other["pseudonym"], key="someone-else"), store)
    assert letter.topic == TOPICS.deadletter and store.held(other["pseudonym"])
