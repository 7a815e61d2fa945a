"""Partners that publish to Kafka themselves: the example's record is checked by the Kafka
gateway and forwarded to the ordered inbound topic; forged and broken records are not."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer

import schemas
from bus.ports import free_ports
from bus.settings import Settings
from bus.topics import ensure_topics
from tests.support import records
from tests.support.connectors_harness import CE_HEADERS, TRACEPARENT
from tests.support.harness import Reader, running, settings_env
from tests.support.traced import metric_value

pytestmark = pytest.mark.integration

SCHOOLS = "demo-ungdomsuddannelser"  # may send dropout notices for institution:9<code>0<n>


def _publish(settings: Settings, topic: str, key: bytes | None, value: bytes | None) -> None:
    producer = Producer(settings.producer_config())
    producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def _dropout(**kw: object) -> tuple[bytes, bytes, str]:
    record = records.dropout_notice(pseudonym=uuid.uuid4().hex * 2, **kw)
    envelope = record["envelope"]
    return (
        envelope["subject"]["pseudonym"].encode(),
        schemas.encode("dropout_notice", record),
        envelope["event_id"],
    )


def test_the_gateway_forwards_what_a_partner_may_send_and_dead_letters_the_rest(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=unique("gw") + ".", var_dir=tmp_path
    )
    topics = settings.topics
    ensure_topics(settings.kafka_config(), topics.catalogue())
    (metrics_port,) = free_ports(1)
    env = settings_env(settings, UNGEBUS_METRICS_PORT=str(metrics_port))
    reader = Reader(settings, [topics.inbound_events, topics.deadletter], unique("check"))
    with running(["connect", "kafka"], env, tmp_path / "gateway.log") as gateway:
        # the example, as a partner's developer would run it
        result = subprocess.run(
            [sys.executable, "-m", "connectors.examples.direct_kafka"],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "stored at" in result.stdout and topics.partner_events(SCHOOLS) in result.stdout
        own = topics.partner_events(SCHOOLS)
        forged_key, forged, forged_id = _dropout(source_id="000000")  # nobody's institution
        prison_key, prison, prison_id = _dropout(source_kind="prison", source_id="kf-vest-01")
        valid_key, valid, valid_id = _dropout()
        _publish(settings, own, forged_key, forged)
        _publish(settings, own, prison_key, prison)  # not a source the schools may claim
        _publish(settings, own, b"not-the-pseudonym", valid)
        _publish(settings, own, valid_key, b"\x00\x00\x00\x00\x01garbage")
        _publish(settings, own, valid_key, None)
        too_big = b"\x00" + b"\x01" * 70_000  # over the partner bound
        _publish(settings, own, valid_key, too_big)
        _publish(settings, own, valid_key, valid)

        seen = reader.wait_for(
            lambda s: (
                len([r for r in s if r.topic == topics.deadletter]) == 6
                and any(r.record.get("envelope", {}).get("event_id") == valid_id for r in s)
            ),
            what="one forwarded event after six dead letters",
        )
        assert gateway.poll() is None, (tmp_path / "gateway.log").read_text()[-3000:]
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text

    reader.close()
    example_id = next(w.rstrip(":") for w in result.stdout.split() if _is_uuid(w))
    forwarded = [s for s in seen if s.topic == topics.inbound_events]
    assert sorted(s.record["envelope"]["event_id"] for s in forwarded) == sorted(
        [example_id, valid_id]
    )
    example = next(s for s in forwarded if s.record["envelope"]["event_id"] == example_id)
    headers = dict(example.headers)
    assert set(headers) >= CE_HEADERS and TRACEPARENT.fullmatch(headers["traceparent"])
    assert example.key == example.record["envelope"]["subject"]["pseudonym"].encode()
    assert all(s.sealed for s in forwarded), "the gateway forwards partners' records sealed"

    letters = [s.record for s in seen if s.topic == topics.deadletter]
    assert {r["component"] for r in letters} == {"gateway"}
    assert {r["source_topic"] for r in letters} == {own}
    by_type: dict[str, list[dict[str, object]]] = {}
    for letter in letters:
        by_type.setdefault(letter["error_type"], []).append(dict(letter))
    assert sorted(by_type) == [
        "DecodeError", "SourceNotAllowed", "Tombstone", "TooLarge", "WrongKey"
    ]  # fmt: skip
    not_allowed = {str(r["event_id"]): str(r["reason"]) for r in by_type["SourceNotAllowed"]}
    assert "institution:000000 is not a source partner" in not_allowed[forged_id]
    assert "prison:kf-vest-01 is not a source partner" in not_allowed[prison_id]
    assert "key is not the subject pseudonym" in str(by_type["WrongKey"][0]["reason"])
    assert "does not decode" in str(by_type["DecodeError"][0]["reason"])
    assert "no value" in str(by_type["Tombstone"][0]["reason"])
    (too_large,) = by_type["TooLarge"]
    assert "may be at most" in str(too_large["reason"])
    assert too_large["original_value_sha256"] == hashlib.sha256(too_big).hexdigest()

    # What the operators' dashboard counts: per partner (an organisation) and kind, and the
    # dead letters per reason.
    def count(name: str, **labels: str) -> float | None:
        return metric_value(scraped, name, ungebus_partner=SCHOOLS, ungebus_channel="kafka",
                            **labels)  # fmt: skip

    accepted = count("ungebus_events_accepted_total", ungebus_event_kind="dropout_notice")
    assert accepted == 2, scraped
    forbidden = {"ungebus_event_kind": "dropout_notice", "ungebus_reason": "forbidden"}
    assert count("ungebus_events_rejected_total", **forbidden) == 2
    undecoded = {"ungebus_event_kind": "unknown", "ungebus_reason": "invalid"}
    assert count("ungebus_events_rejected_total", **undecoded) == 2  # tombstone, garbage
    for error_type, letters_of_type in by_type.items():
        labels = {"ungebus_component": "gateway", "ungebus_error_type": error_type}
        assert metric_value(scraped, "ungebus_deadletters_total", **labels) == len(letters_of_type)


def _is_uuid(word: str) -> bool:
    try:
        uuid.UUID(word.rstrip(":"))
    except ValueError:
        return False
    return True
