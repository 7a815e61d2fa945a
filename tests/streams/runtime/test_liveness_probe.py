"""The router's lag probe reads a consumer group's committed offsets and log ends from Kafka."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from streams.runtime.liveness import LagProbe
from tests.support.kafka_login import client_config

pytestmark = pytest.mark.integration


def test_lag_is_the_records_after_the_committed_offset(
    kafka_bootstrap: str, new_topic: Callable[..., str], unique: Callable[[str], str]
) -> None:
    topic, group = new_topic("lag", partitions=2), unique("lag-group")
    producer = Producer(client_config(kafka_bootstrap))
    for i in range(10):
        producer.produce(topic, value=b"x", partition=i % 2)  # 5 records in each partition
    assert producer.flush(30) == 0
    consumer = Consumer(client_config(kafka_bootstrap, **{"group.id": group}))
    consumer.commit(offsets=[TopicPartition(topic, 0, 3)], asynchronous=False)
    consumer.close()

    offsets = LagProbe(client_config(kafka_bootstrap), group, [topic]).read()

    assert offsets.committed == {(topic, 0): 3}
    assert offsets.end == {(topic, 0): 5, (topic, 1): 5}
    assert offsets.lag() == {(topic, 0): 2, (topic, 1): 5}
