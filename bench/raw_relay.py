"""The raw reference as a process, for latency: a bare confluent-kafka relay of the inbound
topics, with the router's I/O and at-least-once discipline and none of its work.

It reads what is there (up to 500 records, waiting at most 10 ms: the router's fetch wait),
produces each record's bytes twice (the task and the audit record), waits for Kafka's acks,
commits, and goes on, until SIGTERM. ``python -m bench.raw_relay BOOTSTRAP TOPIC_PREFIX``;
it writes to ``<prefix>ref.task`` (which the latency benchmark reads) and ``<prefix>ref.audit``.
"""

from __future__ import annotations

import signal
import sys

from confluent_kafka import Consumer, Message, Producer

from bus.settings import Settings
from bus.topics import TopicSpec, ensure_topics

FETCH_WAIT_S = 0.01


def outputs(settings: Settings) -> tuple[str, str]:
    return f"{settings.topic_prefix}ref.task", f"{settings.topic_prefix}ref.audit"


def create_outputs(settings: Settings) -> tuple[str, str]:
    """The two output topics, created (one partition each); returns their names."""
    names = outputs(settings)
    ensure_topics(settings.kafka_config(), [TopicSpec(name, 1) for name in names])
    return names


def relay(settings: Settings) -> None:
    out_task, out_audit = outputs(settings)
    consumer = Consumer(settings.consumer_config(f"{settings.topic_prefix}ref-relay"))
    consumer.subscribe([settings.topics.inbound_events])
    producer = Producer(settings.producer_config(**{"linger.ms": 0}))
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    try:
        while not stopping:
            pass_on(consumer.consume(num_messages=500, timeout=FETCH_WAIT_S), consumer, producer,
                    (out_task, out_audit))  # fmt: skip
    finally:
        consumer.close()


def pass_on(
    batch: list[Message], consumer: Consumer, producer: Producer, to: tuple[str, str]
) -> int:
    """The reference's work on one batch: each record's bytes to both topics, Kafka's acks for
    all of them, then the commit. Returns how many records it passed on."""
    done = 0
    for message in batch:
        if message.error() is None:
            for topic in to:
                producer.produce(topic, key=message.key(), value=message.value())
            done += 1
    if batch:
        producer.flush(30)
        consumer.commit(asynchronous=False)
    return done


if __name__ == "__main__":
    bootstrap, prefix = sys.argv[1:3]
    relay(Settings(kafka_bootstrap_servers=bootstrap, topic_prefix=prefix))
