"""Reading the dead-letter topic (and, for a letter kept by reference, its original's topic).

An operator's read leaves nothing behind: partitions are assigned, read from their start
to where they ended when the read began, and nothing is committed, so no consumer group
needs READ (``ops`` has READ on ``deadletter`` and DESCRIBE on the groups, which is all
librdkafka asks for). One record at a coordinate is read the same way.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from contextlib import closing
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

import schemas
from bus.records import NotReadToEnd, Received, read_to_ends, received
from bus.settings import Settings
from consumers.deadletters.letters import Letter, letter_from

STALLED_S = 30.0  # no record and no end of partition for this long: the read gives up
METADATA_TIMEOUT_S = 15.0


class ReadError(RuntimeError):
    """Kafka would not give the records; the message names the topic and the principal."""


@dataclass(frozen=True)
class Unreadable:
    """A record on the dead-letter topic that is not a dead letter the bus wrote."""

    partition: int
    offset: int
    why: str


def reader_group(prefix: str) -> str:
    """The group id librdkafka requires of a consumer; never joined, never committed."""
    return f"{prefix}ungebus-deadletters"


def _consumer(settings: Settings) -> Consumer:
    return Consumer(
        settings.consumer_config(
            reader_group(settings.topic_prefix),
            **{"enable.partition.eof": True, "fetch.max.bytes": 8 * 1024 * 1024},
        )
    )


def _partitions(consumer: Consumer, topic: str, settings: Settings) -> list[int]:
    try:
        metadata = consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S)
    except KafkaException as exc:
        raise ReadError(f"cannot reach Kafka for {topic}: {exc.args[0].str()}") from None
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        why = "it does not exist" if found is None else found.error.str()
        raise ReadError(
            f"Kafka does not show topic {topic} to principal {settings.kafka_principal!r}: {why}"
        )
    return sorted(found.partitions)


def _failure(error: KafkaError, topic: str, settings: Settings) -> ReadError:
    return ReadError(
        f"Kafka refused principal {settings.kafka_principal!r} reading {topic}: {error.str()}"
    )


def read_topic(settings: Settings, topic: str) -> list[Received]:
    """Every record of ``topic`` up to where it ended when the read began, in partition and
    offset order."""
    consumer = _consumer(settings)
    try:
        starts: dict[int, int] = {}
        ends: dict[int, int] = {}
        for partition in _partitions(consumer, topic, settings):
            low, high = _watermarks(consumer, topic, partition, settings)
            if high > low:
                starts[partition], ends[partition] = low, high
        found = [received(m) for m in _read(consumer, topic, settings, starts, ends)]
        return sorted(found, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def read_one(settings: Settings, topic: str, partition: int, offset: int) -> Received | str:
    """The record at ``topic/partition/offset``, or why it is not there (in words)."""
    consumer = _consumer(settings)
    try:
        if partition not in _partitions(consumer, topic, settings):
            return f"{topic} has no partition {partition}"
        low, high = _watermarks(consumer, topic, partition, settings)
        if offset < low:
            return (
                f"it is no longer on {topic}/{partition}: retention removed everything "
                f"before offset {low}"
            )
        if offset >= high:
            return f"there is no record there: {topic}/{partition} ends before offset {high}"
        with closing(
            _read(consumer, topic, settings, {partition: offset}, {partition: high})
        ) as one:
            got = next(one, None)
        if got is None or (got.offset() or 0) != offset:
            return f"it is no longer on {topic}/{partition} (compacted or deleted)"
        return received(got)
    finally:
        consumer.close()


def _watermarks(
    consumer: Consumer, topic: str, partition: int, settings: Settings
) -> tuple[int, int]:
    try:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=METADATA_TIMEOUT_S
        )
    except KafkaException as exc:
        raise _failure(exc.args[0], topic, settings) from None
    return int(low), int(high)


def _read(
    consumer: Consumer,
    topic: str,
    settings: Settings,
    starts: dict[int, int],
    ends: dict[int, int],
) -> Generator[Message, None, None]:
    """The records from ``starts`` to ``ends`` (``bus.records.read_to_ends``); any error
    raises. Gives up when nothing arrives for :data:`STALLED_S`."""

    def refused(error: KafkaError, _partition: int | None) -> None:
        raise _failure(error, topic, settings)

    try:
        yield from read_to_ends(consumer, topic, starts, ends, refused, stalled_s=STALLED_S)
    except NotReadToEnd as exc:
        raise ReadError(str(exc)) from None


def letters_of(records: Sequence[Received], max_size: int) -> tuple[list[Letter], list[Unreadable]]:
    """The dead letters among ``records`` (decoded), and what is not one."""
    letters: list[Letter] = []
    unreadable: list[Unreadable] = []
    for r in records:
        if r.value is None:
            unreadable.append(Unreadable(r.partition, r.offset, "no value"))
            continue
        try:
            name, _version, record = schemas.decode(r.value, max_size=max_size)
        except schemas.DecodeError as exc:
            unreadable.append(Unreadable(r.partition, r.offset, f"does not decode: {exc}"))
            continue
        if name != "dead_letter":
            unreadable.append(Unreadable(r.partition, r.offset, f"a {name}, not a dead letter"))
            continue
        letters.append(letter_from(r.topic, r.partition, r.offset, record, r.headers))
    return letters, unreadable
