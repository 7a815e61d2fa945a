"""The router on sealed records (``bus.crypto``), without Kafka: unsealed to be decided, task
details sealed on the way out, an erased person's records passed over."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

import schemas
from bus.crypto import MemoryKeyring, seal, unseal
from bus.sealed_fields import unseal_map
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


class Counted:
    """An observer that remembers what was passed over and dead-lettered."""

    def __init__(self) -> None:
        self.passed_over: list[str | None] = []
        self.dead: list[str] = []

    def decided(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def dead_letter(self, error_type: str) -> None:
        self.dead.append(error_type)

    def erased(self, event_id: str | None) -> None:
        self.passed_over.append(event_id)


@pytest.fixture
def keyring() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture
def observer() -> Counted:
    return Counted()


@pytest.fixture
def router(keyring: MemoryKeyring, observer: Counted) -> Router:
    return Router(
        POLICY, TOPICS, records.senders(), clock=lambda: NOW, keyring=keyring, observer=observer
    )


@pytest.fixture
def store() -> SubjectStore:
    return SubjectStore(StagedTables.in_memory(*SubjectStore.TABLES))


def _person() -> dict[str, Any]:
    return {"pseudonym": uuid.uuid4().hex * 2, "event_id": str(uuid.uuid4())}


def _sealed(keyring: MemoryKeyring, name: str, record: dict[str, Any]) -> InMessage:
    pseudonym = record["envelope"]["subject"]["pseudonym"]
    return InMessage(
        topic=TOPICS.inbound_events,
        partition=0,
        offset=7,
        key=pseudonym.encode(),
        value=seal(keyring, pseudonym, schemas.encode(name, record)),
        headers=list(schemas.cloudevent_headers(record)),
    )


def _decoded(output: Output) -> dict[str, Any]:
    assert output.value is not None
    return schemas.decode(output.value, max_size=1_000_000).record


def test_a_sealed_event_is_routed_and_its_tasks_details_are_sealed(
    router: Router, store: SubjectStore, keyring: MemoryKeyring
) -> None:
    record = records.release_planning("prison", age=22, residence="167", **_person())
    *tasks, audit = router.handle(_sealed(keyring, "release_planning", record), store)
    decision = decide(InboundEvent("release_planning", record), ConsentState(), POLICY, NOW)
    assert len(tasks) == len(decision.routes) == 3
    for task, route in zip(tasks, decision.routes, strict=True):
        value = _decoded(task)
        assert value["details"] == {}  # nothing personal in the clear
        assert value["sealed_details"] is not None
        assert unseal_map(keyring, value["sealed_details"]) == dict(route.details)
        assert value["task_id"] == route.task_id
        cpr = record["envelope"]["subject"]["cpr"].encode()
        assert cpr not in task.value  # type: ignore[operator]
    assert _decoded(audit)["decision"] == "routed"


def test_a_handover_keeps_the_sending_municipality_clear_for_the_tracker(
    router: Router, store: SubjectStore, keyring: MemoryKeyring
) -> None:
    record = records.handover("municipality", to="161", age=16, **_person())
    *tasks, _audit = router.handle(_sealed(keyring, "handover", record), store)
    assert tasks
    for task in tasks:
        value = _decoded(task)
        details = unseal_map(keyring, value["sealed_details"])
        assert value["details"] == {"from_kommunekode": details["from_kommunekode"]}


def test_an_erased_persons_event_is_passed_over_not_dead_lettered(
    router: Router, store: SubjectStore, keyring: MemoryKeyring, observer: Counted
) -> None:
    person = _person()
    record = records.dropout_notice(age=16, **person)
    message = _sealed(keyring, "dropout_notice", record)
    keyring.erase(person["pseudonym"])
    assert router.handle(message, store) == []
    assert observer.passed_over == [person["event_id"]]
    assert observer.dead == []
    assert store.seen(person["pseudonym"]) == store.seen("nobody")  # nothing remembered


def test_a_sealed_value_that_does_not_open_is_a_dead_letter(
    router: Router, store: SubjectStore, keyring: MemoryKeyring, observer: Counted
) -> None:
    record = records.dropout_notice(age=16, **_person())
    message = _sealed(keyring, "dropout_notice", record)
    assert message.value is not None
    tampered = message.value[:-1] + bytes([message.value[-1] ^ 1])
    (letter,) = router.handle(
        InMessage(message.topic, 0, 7, message.key, tampered, message.headers), store
    )
    assert letter.topic == TOPICS.deadletter
    value = _decoded(letter)
    assert value["error_type"] == "SealError"
    assert "does not authenticate" in value["reason"]
    assert observer.dead == ["SealError"]


def test_a_held_event_stays_sealed_and_is_purged_if_its_person_is_erased(
    router: Router, store: SubjectStore, keyring: MemoryKeyring, observer: Counted
) -> None:
    person = _person()
    record = records.handover("municipality", to="161", age=20, **person)
    message = _sealed(keyring, "handover", record)
    (held,) = router.handle(message, store)
    assert _decoded(held)["decision"] == "held"
    (entry,) = store.held(person["pseudonym"])
    assert entry.wire_bytes == message.value  # kept sealed, as it came
    keyring.erase(person["pseudonym"])
    later = NOW + dt.timedelta(days=400)
    router.clock = lambda: later
    assert router.expire_holds(person["pseudonym"], store) == []
    assert store.held(person["pseudonym"]) == ()
    assert observer.passed_over == [person["event_id"]]


def test_plain_records_written_before_sealing_still_route(
    router: Router, store: SubjectStore
) -> None:
    record = records.dropout_notice(age=16, **_person())
    pseudonym = record["envelope"]["subject"]["pseudonym"]
    message = InMessage(
        TOPICS.inbound_events, 0, 7, pseudonym.encode(),
        schemas.encode("dropout_notice", record), list(schemas.cloudevent_headers(record)),
    )  # fmt: skip
    task, audit = router.handle(message, store)
    assert _decoded(task)["sealed_details"] is not None
    assert _decoded(audit)["decision"] == "routed"


def test_a_record_sealed_under_another_persons_key_is_a_dead_letter(
    router: Router, store: SubjectStore, keyring: MemoryKeyring
) -> None:
    record = records.dropout_notice(age=16, **_person())
    message = _sealed(keyring, "dropout_notice", record)
    other = uuid.uuid4().hex * 2
    assert message.value is not None
    resealed = seal(keyring, other, unseal(keyring, message.value))
    (letter,) = router.handle(
        InMessage(message.topic, 0, 7, message.key, resealed, message.headers), store
    )
    value = _decoded(letter)
    assert value["error_type"] == "Rejected"
    assert "another person's key" in value["reason"]
