"""The broker is a real Kafka: an idempotent, acks=all producer and a consumer round trip."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Message, Producer

from bus.settings import Settings
from bus.waiting import within

pytestmark = pytest.mark.integration


def _consume(consumer: Consumer, count: int, timeout_s: float = 30.0) -> list[Message]:
    messages: list[Message] = []

    def all_read() -> bool:
        for message in consumer.consume(num_messages=count - len(messages), timeout=0.5):
            assert message.error() is None, message.error()
            messages.append(message)
        return len(messages) >= count

    within(all_read, timeout_s, every_s=0)
    return messages


def test_idempotent_producer_and_consumer_round_trip_keys_and_headers(
    kafka_bootstrap: str, new_topic: Callable[..., str], unique: Callable[[str], str]
) -> None:
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    topic = new_topic("roundtrip", partitions=3)
    producer = Producer(settings.producer_config())
    delivered: list[tuple[int, int]] = []

    def on_delivery(err: object, msg: Message) -> None:
        assert err is None, err
        delivered.append((msg.partition(), msg.offset()))

    sent = [
        (f"person-{i % 4}".encode(), f"event {i}".encode(), [("ce_id", f"id-{i}".encode())])
        for i in range(20)
    ]
    for key, value, headers in sent:
        producer.produce(topic, key=key, value=value, headers=headers, on_delivery=on_delivery)
    assert producer.flush(30) == 0
    assert len(delivered) == 20

    consumer = Consumer(settings.consumer_config(unique("group")))
    consumer.subscribe([topic])
    try:
        received = _consume(consumer, 20)
    finally:
        consumer.close()

    assert sorted((m.key(), m.value(), m.headers()) for m in received) == sorted(sent)
    partitions_by_key: dict[bytes, set[int]] = {}
    for message in received:
        partitions_by_key.setdefault(message.key(), set()).add(message.partition())
    # All records about one person land in one partition, so they stay in order.
    assert all(len(parts) == 1 for parts in partitions_by_key.values())
    for key in partitions_by_key:
        values = [m.value() for m in received if m.key() == key]
        assert values == [v for k, v, _ in sent if k == key]


def test_committed_offsets_survive_a_new_consumer(
    kafka_bootstrap: str, new_topic: Callable[..., str], unique: Callable[[str], str]
) -> None:
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    topic = new_topic("offsets")
    producer = Producer(settings.producer_config())
    for i in range(6):
        producer.produce(topic, key=b"k", value=str(i).encode())
    assert producer.flush(30) == 0
    group = unique("group")

    first = Consumer(settings.consumer_config(group))
    first.subscribe([topic])
    got = _consume(first, 3)
    first.commit(message=got[-1], asynchronous=False)
    first.close()

    second = Consumer(settings.consumer_config(group))
    second.subscribe([topic])
    rest = _consume(second, 3)
    second.close()
    assert [m.value() for m in got + rest] == [str(i).encode() for i in range(6)]
