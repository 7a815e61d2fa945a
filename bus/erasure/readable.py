"""Can anything on the bus still be read of one person? Every record keyed by their pseudonym
on the topics that carry personal data is read (as admin), and every sealed part of it (the
whole value, a sealed field, a dead letter's original) is opened with a fresh keyring: after
an erasure none may open."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.partitioner import murmur2
from confluent_kafka import Consumer, KafkaError, TopicPartition

import schemas
from bus.crypto import Erased, Keyring, SealError, is_sealed, unseal
from bus.records import read_to_ends
from bus.settings import Settings


@dataclass
class Readability:
    records: int = 0  # records keyed by the person's pseudonym
    readable: int = 0  # sealed parts that still open
    erased: int = 0  # sealed parts whose key is gone
    per_topic: dict[str, int] = field(default_factory=dict)


def personal_topics(settings: Settings) -> list[str]:
    topics = settings.topics
    return [
        topics.inbound_events,
        *topics.all_tasks(),
        *topics.all_task_acks(),
        topics.deadletter,
    ]


def readability(
    settings: Settings, keyring: Keyring, pseudonym: str, topics: Sequence[str]
) -> Readability:
    """How many of the person's records are there, and how many of their sealed parts open."""
    found = Readability()
    for topic, value in _records_of(settings, topics, pseudonym.encode()):
        found.records += 1
        found.per_topic[topic] = found.per_topic.get(topic, 0) + 1
        for part in sealed_parts(value):
            try:
                unseal(keyring, part)
                found.readable += 1
            except Erased:
                found.erased += 1
            except SealError:
                found.erased += 1  # not openable either way
    return found


def sealed_parts(value: bytes | None) -> list[bytes]:
    """The sealed values in a record: itself, or sealed bytes anywhere in its fields (a dead
    letter's original among them, looked into in turn)."""
    if not value:
        return []
    if is_sealed(value):
        return [value]
    try:
        _name, _version, record = schemas.decode(value, max_size=len(value) + 1)
    except schemas.DecodeError:
        return []
    return list(_sealed_in(record))


def _sealed_in(item: Any) -> Iterator[bytes]:
    if isinstance(item, bytes):
        yield from sealed_parts(item)
    elif isinstance(item, Mapping):
        for inner in item.values():
            yield from _sealed_in(inner)
    elif isinstance(item, list):
        for inner in item:
            yield from _sealed_in(inner)


def _records_of(
    settings: Settings, topics: Sequence[str], key: bytes
) -> Iterator[tuple[str, bytes | None]]:
    consumer = Consumer(
        settings.kafka_config(
            **{
                "group.id": f"{settings.topic_prefix}erase-verify-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
    )

    def on_error(error: KafkaError, _partition: int | None) -> None:
        raise RuntimeError(error.str())

    try:
        known = consumer.list_topics(timeout=10).topics
        for topic in topics:
            if topic not in known:
                continue
            # Every producer of the bus partitions by murmur2 of the key: the person's records
            # are in one partition of each topic.
            partition = (murmur2(key) & 0x7FFFFFFF) % len(known[topic].partitions)
            low, end = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if end <= low:
                continue
            found = read_to_ends(
                consumer, topic, {partition: low}, {partition: end}, on_error, deadline_s=120
            )
            for message in found:
                if message.key() == key:
                    yield topic, message.value()
    finally:
        consumer.close()
