"""The router against a real broker: each event kind to the right unit, consent, holds, failures.

One router process (a real faust worker, ``ungebus streams``) serves the whole module; each
test uses its own young people and event ids, and reads back what the router wrote.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import schemas
from bus.settings import Settings
from streams.routing.policy import load_policy
from tests.support import records
from tests.support.harness import (
    Reader,
    Seen,
    fresh_bus,
    produce,
    produce_raw,
    running,
    settings_env,
)

pytestmark = pytest.mark.integration

POLICY = load_policy()


@pytest.fixture(scope="module")
def router(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, Reader]]:
    tmp = tmp_path_factory.mktemp("router")
    settings = fresh_bus(kafka_bootstrap, "router", tmp)
    topics = settings.topics
    watched = [*topics.all_tasks(), topics.audit_routing, topics.deadletter]
    reader = Reader(settings, watched, f"check-{uuid.uuid4().hex[:8]}")
    env = settings_env(settings, UNGEBUS_ROUTER_HOLD_CHECK_INTERVAL_S="0.5")
    with running(["streams", "--loglevel", "warn"], env, tmp / "router.log") as process:
        yield settings, reader
        assert process.poll() is None, (tmp / "router.log").read_text()[-3000:]
    reader.close()


def _person() -> dict[str, Any]:
    return {"pseudonym": uuid.uuid4().hex * 2, "occurred_at": dt.datetime.now(dt.UTC)}


def _send(settings: Settings, name: str, record: dict[str, Any]) -> str:
    produce(settings, [(settings.topics.inbound_events, name, record)])
    return str(record["envelope"]["event_id"])


def _tasks(reader: Reader, event_id: str) -> list[Seen]:
    return reader.of("routed_task", event_id=event_id)


def _audits(reader: Reader, event_id: str) -> list[Seen]:
    return reader.of("routing_decision", event_id=event_id)


def _consent(settings: Settings, name: str, person: dict[str, Any], **fields: Any) -> None:
    envelope = records.envelope(
        name, age=fields.pop("age", 20), source_kind="municipality", source_id="161", **person
    )
    record = {"envelope": envelope, **fields}
    produce(settings, [(settings.topics.inbound_events, name, record)])


@pytest.mark.parametrize(
    ("name", "record", "expected"),
    [
        ("dropout_notice", lambda p: records.dropout_notice(age=16, **p), {("161", "youth_unit")}),
        (
            "release_planning",
            lambda p: records.release_planning("prison", age=22, residence="167", **p),
            {("167", "jobcentre"), ("167", "social_services"), ("167", "youth_unit")},
        ),
        (
            "release_planning",
            lambda p: records.release_planning("psychiatric_ward", age=22, **p),
            {("161", "social_services")},
        ),
        (
            "handover",
            lambda p: records.handover("uu", to="183", age=17, **p),
            {("183", "youth_unit")},
        ),
        (
            "handover",
            lambda p: records.handover("municipality", to="165", age=16, **p),
            {("165", "family_services")},
        ),
        (
            "school_absence_signal",
            lambda p: records.school_absence(18.0, **p),
            {("161", "family_services")},
        ),
    ],
    ids=["dropout", "prison", "psychiatry", "uu", "child-moved", "absence"],
)
def test_each_event_kind_reaches_the_right_unit_with_only_allowed_fields(
    router: tuple[Settings, Reader], name: str, record: Any, expected: set[tuple[str, str]]
) -> None:
    settings, reader = router
    event = record(_person())
    event_id = _send(settings, name, event)
    reader.wait_for(
        lambda _: len(_tasks(reader, event_id)) >= len(expected) and _audits(reader, event_id),
        what=f"{name} tasks",
    )
    tasks = _tasks(reader, event_id)
    assert {(t.record["kommunekode"], t.record["unit"]) for t in tasks} == expected
    for task in tasks:
        assert task.topic == settings.topics.tasks(task.record["kommunekode"], task.record["unit"])
        rule = next(
            r
            for r in POLICY.rules_by_event[name]
            if r.unit == task.record["unit"]
            and event["envelope"]["source"]["kind"] in r.sources
            and r.age.covers(records_age(event))
        )
        assert set(task.record["details"]) <= set(rule.fields)
        assert task.key == event["envelope"]["subject"]["pseudonym"].encode()
        assert all(b"1403101234" not in value for _key, value in task.headers)
    (audit,) = _audits(reader, event_id)
    assert audit.record["decision"] in ("routed", "held")
    assert {r["basis"]["citation"] for r in audit.record["routes"]} == {
        POLICY.citation(t.record["basis"]["id"]) for t in tasks
    }
    assert audit.record["policy_version"] == POLICY.version


def records_age(event: dict[str, Any]) -> int:
    envelope = event["envelope"]
    return schemas.cpr.age_on(envelope["subject"]["birth_date"], envelope["occurred_at"].date())


def test_held_for_consent_then_routed_when_consent_arrives(router: tuple[Settings, Reader]) -> None:
    settings, reader = router
    person = _person()
    event_id = _send(
        settings, "handover", records.handover("municipality", to="161", age=20, **person)
    )
    reader.wait_for(lambda _: _audits(reader, event_id), what="held audit")
    assert [a.record["decision"] for a in _audits(reader, event_id)] == ["held"]
    assert _tasks(reader, event_id) == []

    _consent(
        settings,
        "consent_granted",
        person,
        consent_id="c-" + event_id[:8],
        purpose="adult_relocation",
        recipient_unit="youth_unit",
        recipient_kommunekode="161",
        given_by="young_person",
        valid_until=dt.date.today() + dt.timedelta(days=90),
        evidence_reference="doc-1",
    )
    reader.wait_for(lambda _: _tasks(reader, event_id), what="task after consent")
    (task,) = _tasks(reader, event_id)
    assert (task.record["unit"], task.record["kommunekode"]) == ("youth_unit", "161")
    assert task.record["consent_id"] == "c-" + event_id[:8]
    assert task.record["basis"]["kind"] == "consent"
    held, routed = _audits(reader, event_id)
    assert [a.record["decision"] for a in (held, routed)] == ["held", "routed"]
    # routing_decision v2: what the hold waits for, and the route's rule, as fields
    (hold,) = held.record["holds"]
    assert (hold["purpose"], hold["unit"], hold["kommunekode"]) == (
        "adult_relocation", "youth_unit", "161",
    )  # fmt: skip
    assert hold["until"] == held.record["held_until"]
    assert routed.record["holds"] == []
    assert [r["rule_id"] for r in routed.record["routes"]] == ["handover.adult_moved"]


def test_withdrawal_stops_consent_based_routing_at_once(router: tuple[Settings, Reader]) -> None:
    settings, reader = router
    person = _person()
    grant = dict(
        consent_id="c-w",
        purpose="adult_relocation",
        recipient_unit="youth_unit",
        recipient_kommunekode="161",
    )
    _consent(
        settings,
        "consent_granted",
        person,
        given_by="young_person",
        valid_until=dt.date.today() + dt.timedelta(days=90),
        evidence_reference="doc",
        **grant,
    )
    first = _send(
        settings, "handover", records.handover("municipality", to="161", age=20, **person)
    )
    reader.wait_for(lambda _: _tasks(reader, first), what="consent-based task")

    _consent(
        settings,
        "consent_withdrawn",
        {**person, "occurred_at": dt.datetime.now(dt.UTC)},
        withdrawn_by="young_person",
        evidence_reference=None,
        **grant,
    )
    second = _send(
        settings,
        "handover",
        records.handover(
            "municipality", to="161", age=20, **{**person, "occurred_at": dt.datetime.now(dt.UTC)}
        ),
    )
    reader.wait_for(lambda _: _audits(reader, second), what="audit after withdrawal")
    assert [a.record["decision"] for a in _audits(reader, second)] == ["held"]
    assert _tasks(reader, second) == []


def test_hold_that_expires_is_purged_with_an_audit_record(router: tuple[Settings, Reader]) -> None:
    settings, reader = router
    almost_expired = dt.datetime.now(dt.UTC) - dt.timedelta(days=POLICY.hold_for_days, seconds=-3)
    person = {**_person(), "occurred_at": almost_expired}
    event_id = _send(
        settings, "handover", records.handover("municipality", to="161", age=20, **person)
    )
    reader.wait_for(
        lambda _: [a.record["decision"] for a in _audits(reader, event_id)] == ["held", "purged"],
        timeout=30,
        what="held then purged",
    )
    purged = _audits(reader, event_id)[-1]
    assert "adult_relocation" in purged.record["reason"]
    assert [h["purpose"] for h in purged.record["expired"]] == ["adult_relocation"]
    assert purged.record["holds"] == []
    assert _tasks(reader, event_id) == []


def test_duplicate_event_gives_no_second_task(router: tuple[Settings, Reader]) -> None:
    settings, reader = router
    event = records.dropout_notice(age=17, **_person())
    event_id = _send(settings, "dropout_notice", event)
    reader.wait_for(lambda _: _tasks(reader, event_id), what="first task")
    _send(settings, "dropout_notice", event)
    reader.wait_for(lambda _: len(_audits(reader, event_id)) == 2, what="duplicate audit")
    assert [a.record["decision"] for a in _audits(reader, event_id)] == ["routed", "duplicate"]
    assert len(_tasks(reader, event_id)) == 1


def test_poison_pill_goes_to_deadletter_and_the_next_record_is_routed(
    router: tuple[Settings, Reader],
) -> None:
    settings, reader = router
    topic = settings.topics.inbound_events
    poison = b"\x00\x00\x00\x04\x4d" + b"\xff" * 40  # right magic byte, then garbage
    produce_raw(settings, topic, b"someone", poison)
    event_id = _send(settings, "dropout_notice", records.dropout_notice(age=16, **_person()))
    reader.wait_for(lambda _: _tasks(reader, event_id), what="task after the poison pill")
    letters = [s for s in reader.of("dead_letter") if s.record["original_value"] == poison]
    assert len(letters) == 1
    letter = letters[0].record
    assert letter["source_topic"] == topic and letter["error_type"] == "DecodeError"
    assert letter["reason"] and letter["source_offset"] >= 0


def test_the_audit_store_lists_every_decision_about_one_person(
    router: tuple[Settings, Reader], tmp_path: Path
) -> None:
    from bus.records import Publisher
    from consumers.audit.feed import AuditFeed
    from consumers.audit.migrate import migrate
    from consumers.audit.query import render
    from consumers.audit.settings import AuditSettings
    from consumers.audit.store import AuditStore, connect

    settings, reader = router
    person = _person()
    first = _send(settings, "dropout_notice", records.dropout_notice(age=16, **person))
    second = _send(
        settings, "release_planning", records.release_planning("prison", age=16, **person)
    )
    reader.wait_for(lambda _: _audits(reader, first) and _audits(reader, second), what="audits")

    audit = AuditSettings(
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        topic_prefix=settings.topic_prefix,
        var_dir=tmp_path,
        audit_group_id=f"audit-{uuid.uuid4().hex[:8]}",
    )
    engine = connect(audit.database_url)
    migrate(engine)
    store = AuditStore(engine)
    publisher = Publisher(audit.producer_config(), 10)
    feed = AuditFeed(audit, store, publisher)
    try:
        deadline = time.monotonic() + 60
        while len(store.decisions_about(person["pseudonym"])) < 2:
            assert time.monotonic() < deadline, "the audit store did not get both decisions"
            feed.poll_once(timeout_s=0.5)
    finally:
        feed.close()
        publisher.close()
    found = store.decisions_about(person["pseudonym"])
    engine.dispose()
    # Two inbound topics reach the router in fetch order, not publish order: oldest first is
    # the order it decided them in, which is also their order on audit.routing.
    assert sorted(d.event_id for d in found) == sorted([first, second])
    assert [d.decided_at for d in found] == sorted(d.decided_at for d in found)
    assert [d.event_id for d in found] == [
        a.record["event_id"] for a in reader.of("routing_decision")
        if a.record["event_id"] in (first, second)
    ]  # fmt: skip
    by_event = {d.event_id: d for d in found}
    units = {r["unit"] for r in by_event[second].routes}
    assert units == {"jobcentre", "social_services", "youth_unit"}
    text = render(by_event[first])
    assert "youth_unit@161 on kui_12c" in text and "ROUTED" in text


def _caught_up(settings: Settings, topic: str) -> bool:
    """Whether the router has committed every record of ``topic`` there is now."""
    from confluent_kafka import Consumer, TopicPartition

    from bus.acls.matrix import faust_app_id
    from bus.confluent_fixes import CommittedOffsets

    probe = Consumer(settings.kafka_config(**{"group.id": f"probe-{uuid.uuid4().hex[:8]}"}))
    try:
        ends = {
            (topic, p): probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in probe.list_topics(topic, timeout=10).topics[topic].partitions
        }
    finally:
        probe.close()
    group = faust_app_id(settings.topic_prefix, "router")
    with CommittedOffsets(settings.kafka_config(), group) as offsets:
        committed = offsets.read(ends)
    return all(committed.get(tp, 0) >= end for tp, end in ends.items() if end)


def _event_ids_on(settings: Settings, topic: str) -> list[str]:
    from confluent_kafka import Consumer, KafkaError

    from bus.records import end_offsets, read_to_ends

    consumer = Consumer(settings.kafka_config(**{"group.id": f"read-{uuid.uuid4().hex[:8]}"}))

    def fail(error: KafkaError, _partition: int | None) -> None:
        raise AssertionError(error.str())

    try:
        ends = {p: e for p, e in end_offsets(consumer, topic, 10).items() if e}
        found = read_to_ends(consumer, topic, dict.fromkeys(ends, 0), ends, fail, deadline_s=30)
        return [str(schemas.decode(m.value()).record["event_id"]) for m in found]
    finally:
        consumer.close()


def test_an_erased_persons_held_event_is_purged_and_no_later_consent_releases_it(
    router: tuple[Settings, Reader],
) -> None:
    from bus.erasure.fact import Erasure
    from bus.erasure.record import erasure_record
    from bus.waiting import wait_until

    settings, reader = router
    person = _person()
    event_id = _send(
        settings, "handover", records.handover("municipality", to="161", age=20, **person)
    )
    reader.wait_for(lambda _: _audits(reader, event_id), what="held audit")
    erasure = Erasure(person["pseudonym"], dt.datetime.now(dt.UTC), "req", "admin", "d@h", 1)
    out = erasure_record(settings.topics.erasures, erasure)
    produce_raw(settings, out.topic, out.key, out.value)
    wait_until(lambda: _caught_up(settings, out.topic), 60, "the router read the erasure")

    _consent(
        settings, "consent_granted", person, consent_id="c-erased", purpose="adult_relocation",
        recipient_unit="youth_unit", recipient_kommunekode="161", given_by="young_person",
        valid_until=dt.date.today() + dt.timedelta(days=90), evidence_reference="doc-1",
    )  # fmt: skip
    wait_until(lambda: _caught_up(settings, settings.topics.inbound_events), 60, "the consent read")

    # Read to the ends Kafka has now (the router committed the consent: its outputs are
    # there): the held event is gone, so nothing was released.
    tasks = _event_ids_on(settings, settings.topics.tasks("161", "youth_unit"))
    audits = _event_ids_on(settings, settings.topics.audit_routing)
    assert event_id not in tasks
    assert audits.count(event_id) == 1  # its "held" decision only
