"""The router's writer and commit window against a real broker: a record the broker refuses is
that record's dead letter, the records batched beside it are delivered, and the start-up
check names a topic that takes less than the producer may send."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from bus.limits import LimitsError, check_topics
from bus.settings import Settings
from bus.topics import TopicSpec, ensure_topics
from bus.waiting import within
from streams.routing.dead_letters import DeadLetters
from streams.routing.outputs import InMessage, Output
from streams.runtime.state import StagedTables
from streams.runtime.window import Window
from streams.runtime.writer import OutputWriter
from tests.support.harness import Reader

pytestmark = pytest.mark.integration


@pytest.fixture
def small(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> tuple[Settings, str]:
    """Settings with their own deadletter topic, and a topic taking at most 20,000 bytes."""
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap, var_dir=tmp_path, topic_prefix=unique("w") + "."
    )
    topic = f"{settings.topic_prefix}small"
    ensure_topics(
        settings.kafka_config(),
        [
            TopicSpec(topic, 1, config={"max.message.bytes": "20000"}),
            TopicSpec(settings.topics.deadletter, 1),
        ],
    )
    return settings, topic


class Acks:
    """faust's manual-ack stream, as far as the window uses it."""

    def __init__(self) -> None:
        self.acked: list[str] = []

    async def ack(self, event: str) -> None:
        self.acked.append(event)


def test_a_record_the_broker_refuses_is_dead_lettered_and_its_batch_mates_delivered(
    small: tuple[Settings, str],
) -> None:
    settings, topic = small
    consumed = {
        name: InMessage("inbound.x", 0, offset, name.encode(), f"original {name}".encode(), [])
        for offset, name in enumerate(("a", "big", "c"))
    }
    outputs = {
        "a": Output(topic, b"a", b"small", []),
        "big": Output(topic, b"big", os.urandom(50_000), []),  # incompressible, over 20,000
        "c": Output(topic, b"c", b"small", []),
    }
    failures: list[BaseException] = []
    acks = Acks()

    async def scenario() -> None:
        writer = OutputWriter(settings, timeout_s=30)
        letters = DeadLetters(settings.topics.deadletter, settings.record_limits)
        window = Window(writer, StagedTables({}), failures.append, dead_letters=letters)
        async with window.lock:
            for name, message in consumed.items():  # one batch: one partition, 2 ms linger
                window.add([outputs[name]], acks, name, message)
            await window.commit()

    asyncio.run(scenario())

    assert failures == []
    assert acks.acked == ["a", "big", "c"]
    assert sorted(_keys(settings, topic, 2)) == [b"a", b"c"]
    [letter] = _dead_letters(settings)
    assert (letter["source_offset"], letter["original_value"]) == (1, b"original big")
    assert letter["error_type"] == "RefusedByKafka"
    assert f"Kafka refused its output for {topic}" in str(letter["reason"])


def _keys(settings: Settings, topic: str, count: int) -> list[bytes]:
    """The keys of the first ``count`` records on ``topic`` (plain bytes, not Avro)."""
    consumer = Consumer(settings.consumer_config(f"{topic}-check"))
    consumer.subscribe([topic])
    keys: list[bytes] = []

    def read() -> bool:
        for message in consumer.consume(num_messages=10, timeout=0.5):
            if message.error() is None:
                keys.append(message.key())
        return len(keys) >= count

    within(read, 30, every_s=0)
    consumer.close()
    return keys


def _dead_letters(settings: Settings) -> list[dict[str, object]]:
    reader = Reader(settings, [settings.topics.deadletter], "writer-letters")
    seen = reader.wait_for(lambda found: bool(found), timeout=30, what="a dead letter")
    reader.close()
    return [dict(s.record) for s in seen if s.name == "dead_letter"]


def test_the_start_check_names_a_topic_that_takes_smaller_batches(
    small: tuple[Settings, str],
) -> None:
    settings, topic = small
    with pytest.raises(LimitsError) as refused:
        check_topics(settings.kafka_config(), settings.producer_message_max_bytes, [topic])
    assert f"{topic} (20,000)" in str(refused.value)
    assert "UNGEBUS_PRODUCER_MESSAGE_MAX_BYTES is 1,000,000" in str(refused.value)
    # the broker's default (1 MiB + 12) takes the default producer's batches
    check_topics(
        settings.kafka_config(), settings.producer_message_max_bytes, [settings.topics.deadletter]
    )
