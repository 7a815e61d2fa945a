"""Events that arrive while the router starts (its tables recovering) are all routed.

The consent-recovery bench found events lost there: after a restart over 200,000 people's
consents, an event published during recovery to a partition the group had never committed was
never routed (faust seeks back only to committed offsets;
``streams.runtime.faust_fixes._ConsumerThread`` now reads such partitions from their beginning).
This test has not reproduced that loss on its own (it needs the bench's timing); it guards the
start-up path the fix changed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import murmur2
from confluent_kafka import Producer

from bus.settings import Settings
from bus.topics import SUBJECT_PARTITIONS, ensure_topics
from streams.routing.consent import Consent, ConsentState
from streams.runtime.app import internal_topics, router_app_id
from tests.support import records
from tests.support.harness import Reader, produce, running, settings_env

pytestmark = pytest.mark.integration

PEOPLE_IN_TABLE = 30_000  # a few seconds of recovery on this machine
EVENTS = 30


def _fill_consent_table(settings: Settings, people: int) -> None:
    """Consent state for ``people`` written to the router's changelog, as a long-lived bus has."""
    topic = f"{router_app_id(settings)}-consents-changelog"
    now = dt.datetime.now(dt.UTC)
    state = ConsentState(
        (Consent("c", "adult_relocation", "youth_unit", "161", "young_person", now, now.date()),)
    ).to_json()
    producer = Producer(settings.producer_config(**{"linger.ms": 50}))
    for i in range(people):
        key = f"{i:064x}".encode()
        partition = (murmur2(key) & 0x7FFFFFFF) % SUBJECT_PARTITIONS
        while True:
            try:
                producer.produce(topic, key=key, value=state, partition=partition)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0


def test_events_published_while_tables_recover_are_all_routed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"startup-{uuid.uuid4().hex[:8]}.",
        var_dir=tmp_path,
    )
    ensure_topics(
        settings.kafka_config(), [*settings.topics.catalogue(), *internal_topics(settings)]
    )
    audit = Reader(settings, [settings.topics.audit_routing], "startup-audit")

    def audited() -> set[str]:
        return {s.record["event_id"] for s in audit.seen}

    def route(events: list[dict[str, Any]]) -> None:
        topic = settings.topics.inbound_events
        produce(settings, [(topic, "dropout_notice", r) for r in events])

    def dropout_notices(count: int) -> list[dict[str, Any]]:
        return [
            records.dropout_notice(pseudonym=uuid.uuid4().hex * 2, age=17, residence="161")
            for _ in range(count)
        ]

    log = tmp_path / "router.log"
    env = settings_env(settings)
    # A router that ran before: its group has committed offsets on some partitions only.
    first = dropout_notices(1)
    with running(["streams", "--loglevel", "warn"], env, log):
        route(first)
        audit.wait_for(lambda _: audited() >= {first[0]["envelope"]["event_id"]}, timeout=120)
    _fill_consent_table(settings, PEOPLE_IN_TABLE)
    events = dropout_notices(EVENTS)
    event_ids = {r["envelope"]["event_id"] for r in events}
    with running(["streams", "--loglevel", "warn"], env, log):
        route(events)  # while the router starts and recovers its tables
        audit.wait_for(lambda _: audited() >= event_ids, timeout=180, what="every event routed")
    audit.close()
    assert audited() - {first[0]["envelope"]["event_id"]} == event_ids
