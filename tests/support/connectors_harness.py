"""Helpers for the connector tests against the real broker; no tests here.

Settings for a test's own topics, every record on the connectors' topics read back, and the
checks a record must pass (the exact mapping of its payload, CloudEvents headers, no CPR).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from bus.waiting import wait_until, within
from connectors.ingest import connector_topics, topic_for
from connectors.settings import ConnectorSettings
from schemas import decode, parse_partner, pseudonym, to_record
from tests.support.partner_payloads import partner_name
from tests.support.sealed import opened

TRACEPARENT = re.compile(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
CE_HEADERS = {"ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "ce_subject"}


def connector_settings(bootstrap: str, prefix: str, tmp_path: Path, **kw: Any) -> ConnectorSettings:
    return ConnectorSettings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=prefix + ".",
        var_dir=tmp_path,
        partners_file=tmp_path / "partners.toml",
        **kw,
    )


def read_all(settings: ConnectorSettings, timeout_s: float = 30.0) -> list[Message]:
    """Every record now on the connectors' event topics (up to each partition's high
    watermark); the key store's records are not events."""
    consumer = Consumer(settings.consumer_config("connectors-test-reader"))
    try:
        wanted = []
        for spec in connector_topics(settings.topics):
            if spec.name == settings.topics.keys:
                continue
            for partition in range(spec.partitions):
                low, high = _watermarks(consumer, TopicPartition(spec.name, partition))
                if high > low:
                    wanted.append((TopicPartition(spec.name, partition, OFFSET_BEGINNING), high))
        consumer.assign([tp for tp, _ in wanted])
        remaining = {(tp.topic, tp.partition): high for tp, high in wanted}
        messages: list[Message] = []

        def read() -> bool:
            for message in consumer.consume(num_messages=500, timeout=0.5):
                assert message.error() is None, message.error()
                messages.append(message)
                where = (message.topic(), message.partition())
                if where in remaining and message.offset() + 1 >= remaining[where]:
                    del remaining[where]
            return not remaining

        within(read, timeout_s, every_s=0)
        assert not remaining, f"could not read up to the end of {remaining}"
        return messages
    finally:
        consumer.close()


def _watermarks(consumer: Consumer, partition: TopicPartition) -> tuple[int, int]:
    """Low and high watermark, waiting out a new topic whose leader is still being elected."""

    def read() -> tuple[int, int] | None:
        try:
            low, high = consumer.get_watermark_offsets(partition, timeout=10)
            return int(low), int(high)
        except KafkaException:
            return None

    return wait_until(read, 20, f"the watermarks of {partition.topic}", every_s=0.1)


def check_record(
    message: Message, kind: str, payload: dict[str, Any], settings: ConnectorSettings
) -> None:
    """The record is the exact mapping of the payload, keyed and headed by the rules."""
    key = settings.pseudonym_key()
    decoded = decode(opened(settings, message.value()))
    event_id = decoded.record["envelope"]["event_id"]
    name, expected = to_record(parse_partner(kind, payload), key, event_id)
    assert decoded.name == name and decoded.record == expected
    if "event_id" in payload:
        assert event_id == payload["event_id"]
    assert message.topic() == topic_for(kind, settings.topics)
    subject_pseudonym = pseudonym(payload["subject"]["cpr"], key)
    assert message.key() == subject_pseudonym.encode()
    headers = dict(message.headers())
    assert CE_HEADERS | {"traceparent", "content-type"} <= set(headers)
    assert headers["ce_id"] == event_id.encode()
    assert headers["ce_subject"] == subject_pseudonym.encode()
    assert TRACEPARENT.fullmatch(headers["traceparent"])
    cpr = payload["subject"]["cpr"].replace("-", "").encode()
    for value in [message.key(), *headers.values()]:
        assert cpr not in value.replace(b"-", b""), "a CPR number in a key or header"


def bearer(tokens: dict[str, str], kind: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[partner_name(kind)]}"}
