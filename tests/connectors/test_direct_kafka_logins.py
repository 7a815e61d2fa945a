"""A partner that publishes to Kafka itself does so as its own principal, under the ACL matrix,
and the gateway forwards as ``connector-kafka``: the whole direct path with no admin in it.

On the session's secured broker, for this test's topic prefix: the partner's and the gateway's
SCRAM credentials stored and the matrix's ACLs for the prefix added (as admin, taken away
afterwards). The example (``connectors.examples.direct_kafka``) runs as
``partner-demo-ungdomsuddannelser``; that principal cannot write to another partner's topic nor
straight to the inbound topic, and what it did send reaches ``inbound.events`` through the
gateway.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bus.acls.cluster import ClusterAcls
from bus.acls.matrix import CONNECTOR_KAFKA, matrix, partner_principal
from bus.demo_partners import demo_partners
from bus.settings import Settings
from bus.topics import ensure_topics
from deploy.local.broker import LocalKafka
from deploy.local.security import ADMIN, upsert_credentials
from tests.support.acl_probe import Client
from tests.support.harness import Reader, running, settings_env, ungebus

pytestmark = pytest.mark.integration

SCHOOLS = "demo-ungdomsuddannelser"
PRISONS = "demo-kriminalforsorgen"
PARTNERS = [p.name for p in demo_partners()]  # the gateway's, with no partners file


@pytest.fixture
def prefixed(
    kafka_broker: LocalKafka, unique: Callable[[str], str], tmp_path: Path
) -> Iterator[Settings]:
    """Admin's settings for a fresh prefix whose topics exist and whose ACLs are the matrix's."""
    settings = Settings(
        kafka_bootstrap_servers=kafka_broker.bootstrap_servers,
        topic_prefix=unique("direct") + ".",
        var_dir=tmp_path,
    )
    topics = settings.topics
    ensure_topics(
        settings.kafka_config(),
        [*topics.catalogue(), *topics.partner_catalogue(PARTNERS)],
    )
    upsert_credentials(
        kafka_broker.client_config(ADMIN),
        kafka_broker.security,
        [*map(partner_principal, PARTNERS), CONNECTOR_KAFKA],
    )
    acls = ClusterAcls(settings.kafka_config())
    before = acls.read()
    acls.apply([*before, *matrix(topics, PARTNERS)])
    try:
        yield settings
    finally:
        acls.apply(before)


def _as(broker: LocalKafka, settings: Settings, principal: str) -> dict[str, str]:
    env = {k: v for k, v in settings_env(settings).items() if k != "UNGEBUS_KAFKA_SASL_PASSWORD"}
    return env | broker.client_env(principal)


def test_a_partner_publishes_as_itself_and_the_gateway_forwards_it_as_its_own(
    kafka_broker: LocalKafka, prefixed: Settings, unique: Callable[[str], str], tmp_path: Path
) -> None:
    topics = prefixed.topics
    partner = partner_principal(SCHOOLS)
    as_partner = _as(kafka_broker, prefixed, partner)
    assert as_partner["UNGEBUS_KAFKA_SASL_USERNAME"] == partner

    # Not another partner's topic, not the bus's inbound topic: only its own.
    probe = Client(partner, kafka_broker.client_config(partner))
    tried = [topics.partner_events(PRISONS), topics.inbound_events, topics.partner_events(SCHOOLS)]
    allowed = {o.check.target: o.allowed for o in probe.produce(tried)}
    assert allowed == {tried[0]: False, tried[1]: False, tried[2]: True}, allowed

    reader = Reader(prefixed, [topics.inbound_events, topics.deadletter], unique("check"))
    gateway_env = _as(kafka_broker, prefixed, CONNECTOR_KAFKA)
    with running(["connect", "kafka"], gateway_env, tmp_path / "gateway.log") as gateway:
        result = subprocess.run(
            [sys.executable, "-m", "connectors.examples.direct_kafka"],
            env={**os.environ, **as_partner}, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        event_id = next(w.rstrip(":") for w in result.stdout.split() if _is_uuid(w))
        seen = reader.wait_for(
            lambda s: any(
                r.topic == topics.inbound_events
                and r.record.get("envelope", {}).get("event_id") == event_id
                for r in s
            ),
            what="the example's event forwarded by the gateway",
        )
        assert gateway.poll() is None, (tmp_path / "gateway.log").read_text()[-3000:]
    reader.close()
    # The probe's record on its own topic is not an event: the gateway dead-letters it.
    forwarded = [r for r in seen if r.topic == topics.inbound_events]
    assert [r.record["envelope"]["event_id"] for r in forwarded] == [event_id]
    assert forwarded[0].key == forwarded[0].record["envelope"]["subject"]["pseudonym"].encode()


def test_a_component_whose_topics_are_not_there_says_so_as_whom_and_exits(
    kafka_broker: LocalKafka, unique: Callable[[str], str], tmp_path: Path
) -> None:
    """On a secured broker only the admin creates topics: the gateway, as connector-kafka,
    finds none of its topics under a fresh prefix and exits 1 naming itself and them."""
    upsert_credentials(kafka_broker.client_config(ADMIN), kafka_broker.security, [CONNECTOR_KAFKA])
    settings = Settings(
        kafka_bootstrap_servers=kafka_broker.bootstrap_servers,
        topic_prefix=unique("nothing") + ".",
        var_dir=tmp_path,
    )
    result = ungebus(
        {**os.environ, **_as(kafka_broker, settings, CONNECTOR_KAFKA)}, "connect", "kafka"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: "), result.stderr
    assert "principal 'connector-kafka'" in error and "CREATE" in error
    assert settings.topics.deadletter in error
    assert "ungebus topics create" in error
    assert "Traceback" not in result.stderr


def _is_uuid(word: str) -> bool:
    try:
        uuid.UUID(word.rstrip(":"))
    except ValueError:
        return False
    return True
