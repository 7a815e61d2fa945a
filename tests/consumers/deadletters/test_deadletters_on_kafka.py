"""``ungebus deadletters`` against the session's secured broker, as operators run it.

A partner that publishes to Kafka sends an event as a source the partners file does not
list yet: the gateway dead-letters it. ``ops`` lists and shows it (counts, coordinates, no
personal field); only ``admin`` may reveal it, and the reveal is recorded. Once the source is
in the partners file and the gateway and the router have started again, ``admin`` retries
the letter: the event is routed once; a second retry gives no second task (the router sees
the same event id, a duplicate) and both retries are recorded.

Each test has its own topic prefix, the matrix's ACLs for it added as admin (and taken away
afterwards), and ``ops``'s SCRAM credential on the broker.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

import schemas
from bus.acls.cluster import ClusterAcls
from bus.acls.matrix import OPS, matrix
from bus.partners import render_partner, token_sha256
from bus.settings import Settings
from bus.topics import ensure_topics
from deploy.local.broker import LocalKafka
from deploy.local.security import ADMIN, upsert_credentials
from tests.support import records
from tests.support.harness import Reader, Seen, produce, running, settings_env, ungebus

pytestmark = pytest.mark.integration

SCHOOLS = "test-schools"
KNOWN, UNKNOWN = "institution:916101", "institution:916102"
CPR, NAME = "1403101234", "Test Testesen"  # in every test event (tests.support.records)


@pytest.fixture
def bus(
    kafka_broker: LocalKafka, unique: Callable[[str], str], tmp_path: Path
) -> Iterator[Settings]:
    """Admin's settings for a fresh prefix: its topics, the partner's topic, the matrix's ACLs
    for the prefix and ``ops``'s credential; a partners file that does not list UNKNOWN."""
    settings = Settings(
        kafka_bootstrap_servers=kafka_broker.bootstrap_servers,
        topic_prefix=unique("dl") + ".",
        var_dir=tmp_path,
        partners_file=tmp_path / "partners.toml",
    )
    _partners(settings, [KNOWN])
    topics = settings.topics
    ensure_topics(
        settings.kafka_config(), [*topics.catalogue(), *topics.partner_catalogue([SCHOOLS])]
    )
    upsert_credentials(kafka_broker.client_config(ADMIN), kafka_broker.security, [OPS])
    acls = ClusterAcls(settings.kafka_config(), timeout_s=60)
    before = acls.read()
    acls.apply([*before, *matrix(topics, [SCHOOLS])])
    try:
        yield settings
    finally:
        acls.apply(before)


def _partners(settings: Settings, sources: list[str]) -> None:
    text = render_partner(
        SCHOOLS, ["dropout_notice"], sources, token_hash=token_sha256(f"{SCHOOLS}-token")
    )
    assert settings.partners_file is not None
    settings.partners_file.write_text(text)


def _envs(broker: LocalKafka, settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """(admin's, ops's) environment for ``ungebus`` and the components."""
    admin = settings_env(settings, UNGEBUS_PARTNERS_FILE=str(settings.partners_file))
    ops = {k: v for k, v in admin.items() if k != "UNGEBUS_KAFKA_SASL_PASSWORD"}
    return admin, ops | broker.client_env(OPS)


def _send(settings: Settings, record: dict[str, Any], key: bytes | None = None) -> str:
    """As the partner does: its own topic, keyed by the pseudonym, CloudEvents headers."""
    producer = Producer(settings.producer_config())
    pseudonym = record["envelope"]["subject"]["pseudonym"].encode()
    producer.produce(
        settings.topics.partner_events(SCHOOLS),
        key=pseudonym if key is None else key,
        value=schemas.encode("dropout_notice", record),
        headers=schemas.cloudevent_headers(record),
    )
    assert producer.flush(30) == 0
    return str(record["envelope"]["event_id"])


def _letter_of(listed: str, event_id: str) -> str:
    """The coordinates ``list`` prints first on the line of ``event_id``'s letter."""
    lines = [line for line in listed.splitlines() if f"event {event_id}" in line]
    assert len(lines) == 1, listed
    return lines[0].split()[0]


def _personal(output: str, pseudonym: str) -> list[str]:
    return [p for p in (CPR, NAME, pseudonym) if p in output]


def test_a_letter_retried_after_its_fix_is_routed_once_and_a_second_retry_adds_no_task(
    kafka_broker: LocalKafka, bus: Settings, unique: Callable[[str], str], tmp_path: Path
) -> None:
    topics = bus.topics
    admin, ops = _envs(kafka_broker, bus)
    reader = Reader(
        bus, [*topics.all_tasks(), topics.audit_routing, topics.deadletter], unique("c")
    )
    event = records.dropout_notice(pseudonym=uuid.uuid4().hex * 2, source_id=UNKNOWN.split(":")[1])
    logs = tmp_path / "gateway.log", tmp_path / "streams.log"

    def tasks(seen: list[Seen]) -> list[Seen]:
        return [s for s in seen if s.name == "routed_task" and s.record["event_id"] == event_id]

    def decisions(seen: list[Seen]) -> list[str]:
        return sorted(
            s.record["decision"]
            for s in seen
            if s.name == "routing_decision" and s.record["event_id"] == event_id
        )

    with running(["connect", "kafka"], admin, logs[0]), running(["streams"], admin, logs[1]):
        event_id = _send(bus, event)
        reader.wait_for(lambda _: reader.of("dead_letter", event_id=event_id), 120, "the letter")
    (letter,) = reader.of("dead_letter", event_id=event_id)
    assert letter.record["error_type"] == "SourceNotAllowed" and not tasks(reader.seen)
    listed = ungebus(ops, "deadletters", "list", "--reason", "SourceNotAllowed")
    assert listed.returncode == 0, listed.stderr
    at = _letter_of(listed.stdout, event_id)

    _partners(bus, [KNOWN, UNKNOWN])  # the fix: the partner may send as this source now
    with (
        running(["connect", "kafka"], admin, logs[0]) as gateway,
        running(["streams"], admin, logs[1]) as streams,
    ):
        first = ungebus(admin, "deadletters", "retry", at)
        assert first.returncode == 0, first.stdout + first.stderr
        assert f"retried {at} -> {topics.partner_events(SCHOOLS)}/" in first.stdout
        assert "retry 1)" in first.stdout
        reader.wait_for(lambda s: bool(tasks(s)) and decisions(s) == ["routed"], 180, "routed")

        second = ungebus(admin, "deadletters", "retry", at)
        assert second.returncode == 0 and "retry 2)" in second.stdout, second.stdout
        reader.wait_for(lambda s: decisions(s) == ["duplicate", "routed"], 120, "the duplicate")
        assert gateway.poll() is None and streams.poll() is None, logs[1].read_text()[-3000:]
    reader.close()

    routed = tasks(reader.seen)
    assert [(t.record["kommunekode"], t.record["unit"]) for t in routed] == [("161", "youth_unit")]
    assert len({t.record["task_id"] for t in routed}) == 1
    assert len(reader.of("dead_letter", event_id=event_id)) == 1  # it did not fail again
    shown = ungebus(ops, "deadletters", "show", at)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("operator      retry at ") == 2
    assert "(retry 1)" in shown.stdout and "(retry 2)" in shown.stdout


def test_a_letter_the_router_wrote_is_routed_when_retried_after_its_fix(
    bus: Settings, unique: Callable[[str], str], tmp_path: Path
) -> None:
    """The router marks an event id seen only with the event's outputs: a record it
    dead-lettered (here: larger than its UNGEBUS_MAX_RECORD_BYTES) leaves no mark, so once
    the limit is raised a retry routes it, and a second retry is a duplicate."""
    topics = bus.topics
    admin = settings_env(bus, UNGEBUS_PARTNERS_FILE=str(bus.partners_file))
    _partners(bus, [KNOWN])
    reader = Reader(
        bus, [*topics.all_tasks(), topics.audit_routing, topics.deadletter], unique("c")
    )
    event = records.dropout_notice(pseudonym=uuid.uuid4().hex * 2)
    event["institution_name"] = "Vestegnens Gymnasium " * 100  # about 2 KB in all
    event_id = str(event["envelope"]["event_id"])
    log = tmp_path / "streams.log"

    def decisions(seen: list[Seen]) -> list[str]:
        return sorted(
            s.record["decision"]
            for s in seen
            if s.name == "routing_decision" and s.record["event_id"] == event_id
        )

    with running(["streams"], {**admin, "UNGEBUS_MAX_RECORD_BYTES": "1024"}, log):
        produce(bus, [(topics.inbound_events, "dropout_notice", event)])
        reader.wait_for(lambda _: reader.of("dead_letter", event_id=event_id), 120, "the letter")
    assert reader.of("dead_letter", event_id=event_id)[0].record["component"] == "router"

    with running(["streams"], admin, log) as streams:  # the fix: the default limit again
        first = ungebus(admin, "deadletters", "retry", "--component", "router")
        assert first.returncode == 0 and "retry 1)" in first.stdout, first.stdout + first.stderr
        reader.wait_for(lambda s: decisions(s) == ["routed"], 180, "routed after the retry")
        at = first.stdout.split()[1]
        second = ungebus(admin, "deadletters", "retry", at)
        assert second.returncode == 0 and "retry 2)" in second.stdout, second.stdout
        reader.wait_for(lambda s: decisions(s) == ["duplicate", "routed"], 120, "a duplicate")
        assert streams.poll() is None, log.read_text()[-3000:]
    reader.close()
    routed = reader.of("routed_task", event_id=event_id)
    assert len(routed) == 1 and len(reader.of("dead_letter", event_id=event_id)) == 1


def test_operators_see_counts_and_coordinates_never_personal_data_and_only_admin_reveals(
    kafka_broker: LocalKafka, bus: Settings, unique: Callable[[str], str], tmp_path: Path
) -> None:
    topics = bus.topics
    admin, ops = _envs(kafka_broker, bus)
    pseudonym = uuid.uuid4().hex * 2
    unknown = records.dropout_notice(pseudonym=pseudonym, source_id=UNKNOWN.split(":")[1])
    wrong_key = records.dropout_notice(pseudonym=pseudonym)
    reader = Reader(bus, [topics.deadletter], unique("c"))
    with running(["connect", "kafka"], admin, tmp_path / "gateway.log"):
        event_id = _send(bus, unknown)
        _send(bus, wrong_key, key=b"not-the-pseudonym")
        reader.wait_for(lambda s: len(s) == 2, 120, "two dead letters")

        listed = ungebus(ops, "deadletters", "list")
        assert listed.returncode == 0, listed.stderr
        out = listed.stdout
        assert f"2 dead letters on {topics.deadletter}" in out
        assert "by component:    gateway 2" in out
        assert "SourceNotAllowed 1" in out and "WrongKey 1" in out
        assert f"by source topic: {topics.partner_events(SCHOOLS)} 2" in out
        assert "by age:          < 1 h 2" in out
        assert _personal(out + listed.stderr, pseudonym) == []
        at = _letter_of(out, event_id)
        filtered = ungebus(ops, "deadletters", "list", "--reason", "WrongKey", "--newer-than", "1h")
        assert "2 dead letters on" in filtered.stdout and "(1 match the filter)" in filtered.stdout
        assert event_id not in filtered.stdout

        shown = ungebus(ops, "deadletters", "show", at)
        assert shown.returncode == 0, shown.stderr
        assert f"{UNKNOWN} is not a source partner" in shown.stdout
        assert f"source        {topics.partner_events(SCHOOLS)}/" in shown.stdout
        assert "can be retried" in shown.stdout
        assert _personal(shown.stdout + shown.stderr, pseudonym) == []

        for refused in (
            ungebus(ops, "deadletters", "list", "--reveal"),
            ungebus(ops, "deadletters", "show", at, "--reveal"),
            ungebus(ops, "deadletters", "retry", at),
        ):
            assert refused.returncode == 1
            assert "runs as Kafka principal 'admin' only" in refused.stderr
            assert _personal(refused.stdout + refused.stderr, pseudonym) == []

        revealed = ungebus(admin, "deadletters", "show", at, "--reveal")
        assert revealed.returncode == 0, revealed.stderr
        assert CPR in revealed.stdout and NAME in revealed.stdout
        again = ungebus(ops, "deadletters", "show", at)
        assert "operator      reveal at " in again.stdout and "by admin (" in again.stdout
        assert _personal(again.stdout, pseudonym) == []

        # Retried before the fix, it fails again: a new letter that carries the retry count.
        retried = ungebus(admin, "deadletters", "retry", "--reason", "SourceNotAllowed")
        assert retried.returncode == 0 and "retry 1)" in retried.stdout, retried.stdout
        reader.wait_for(lambda s: len(s) == 3, 120, "the retried record's own dead letter")
    reader.close()
    assert (schemas.RETRY_COUNT_HEADER, b"1") in reader.seen[-1].headers
    assert reader.seen[-1].record["event_id"] == event_id
    relisted = ungebus(ops, "deadletters", "list", "--reason", "SourceNotAllowed")
    assert "(2 match the filter)" in relisted.stdout
    assert relisted.stdout.count(f"event {event_id}") == 2
    assert relisted.stdout.count("retried 1x") == 2  # the letter retried, and its record's
