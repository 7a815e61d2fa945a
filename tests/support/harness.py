"""Helpers for integration tests: run ungebus components as real processes, read topics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer

import schemas
from bus.crypto import is_sealed
from bus.settings import PROJECT_ROOT, Settings
from bus.topics import ensure_topics
from bus.waiting import wait_until
from tests.support.sealed import opened

# A test producer that may send what the bus's own producers refuse: up to what the broker
# takes (a topic's default max.message.bytes is 1 MiB + 12), uncompressed.
HOSTILE_PRODUCER = {"message.max.bytes": 1_048_000, "compression.type": "none"}


@dataclass(frozen=True)
class Seen:
    """One record read back from Kafka, decoded."""

    topic: str
    key: bytes | None
    name: str
    record: Mapping[str, Any]
    headers: list[tuple[str, bytes]]
    sealed: bool = False  # the value was sealed on the wire (``bus.crypto``), read unsealed


def fresh_bus(kafka_bootstrap: str, label: str, var_dir: Path, **overrides: Any) -> Settings:
    """Settings for a bus of this test's own (unique topic prefix), its topics created."""
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"{label}-{uuid.uuid4().hex[:8]}.",
        var_dir=var_dir,
        **overrides,
    )
    ensure_topics(settings.kafka_config(), settings.topics.catalogue())
    return settings


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment that gives a subprocess the same settings as the test."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "UNGEBUS_TOPIC_PREFIX": settings.topic_prefix,
        "UNGEBUS_VAR_DIR": str(settings.var_dir),
        **extra,
    }
    return env


def ungebus(
    env: Mapping[str, str], *args: str, timeout_s: float = 180.0
) -> subprocess.CompletedProcess[str]:
    """Run ``ungebus <args>`` to its end, as an operator would; its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "bus", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@contextmanager
def running(
    args: list[str], env: Mapping[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``ungebus <args>`` in the background; stop it (SIGTERM) afterwards."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bus", *args],
            cwd=PROJECT_ROOT,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def produce(settings: Settings, records: Iterable[tuple[str, str, Mapping[str, Any]]]) -> None:
    """Publish (topic, schema name, record) with key = subject pseudonym, like a connector."""
    producer = Producer(settings.producer_config())
    for topic, name, record in records:
        pseudonym = record["envelope"]["subject"]["pseudonym"]
        producer.produce(
            topic,
            key=pseudonym.encode(),
            value=schemas.encode(name, record),
            headers=schemas.cloudevent_headers(record),
        )
    assert producer.flush(30) == 0


def router_input_topic(settings: Settings, kind: str) -> str:
    """Where the router reads records of ``kind`` (a partner event or a consent): one ordered
    topic for every kind."""
    return settings.topics.inbound_events


@dataclass(frozen=True)
class Published:
    topic: str
    partition: int
    offset: int


def publish_to_router(
    settings: Settings,
    records: Iterable[tuple[str, bytes | None, bytes | None, list[tuple[str | bytes, bytes]]]],
) -> list[Published]:
    """Publish raw (kind, key, value, headers) to the router's input, in order, as they are:
    hostile ones too. Where each landed."""
    producer = Producer(settings.producer_config(**HOSTILE_PRODUCER))
    landed: dict[int, Published] = {}
    failed: list[str] = []

    def report(index: int) -> Callable[[KafkaError | None, Message], None]:
        def on_delivery(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                failed.append(f"record {index}: {error.str()}")
            else:
                landed[index] = Published(
                    message.topic() or "", message.partition() or 0, message.offset() or 0
                )

        return on_delivery

    count = 0
    for count, (kind, key, value, headers) in enumerate(records, start=1):
        producer.produce(
            router_input_topic(settings, kind),
            key=key,
            value=value,
            headers=headers,
            on_delivery=report(count - 1),
        )
        producer.poll(0)
    assert producer.flush(60) == 0 and not failed, failed
    return [landed[i] for i in range(count)]


def produce_raw(settings: Settings, topic: str, key: bytes | None, value: bytes) -> None:
    producer = Producer(settings.producer_config())
    producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


class Reader:
    """Reads topics from the beginning and keeps everything decoded, for wait-until checks."""

    def __init__(self, settings: Settings, topics: list[str], group: str) -> None:
        self._consumer = Consumer(
            settings.consumer_config(group, **{"isolation.level": "read_uncommitted"})
        )
        self._consumer.subscribe(topics)
        self._max_size = settings.producer_message_max_bytes
        self._settings = settings
        self.seen: list[Seen] = []

    def poll(self, timeout: float = 0.2) -> None:
        for message in self._consumer.consume(num_messages=500, timeout=timeout):
            if message.error() is not None:
                continue
            # Dead letters may be larger than the codec's limit: as large as the producer takes.
            limit = self._max_size
            value = opened(self._settings, message.value())  # sealed per person
            name, _version, record = schemas.decode(value, max_size=limit)
            headers = list(message.headers() or [])
            sealed = is_sealed(message.value())
            self.seen.append(Seen(message.topic(), message.key(), name, record, headers, sealed))

    def wait_for(
        self,
        condition: Callable[[list[Seen]], bool],
        timeout: float = 60.0,
        what: str = "",
        stalled_after: float | None = None,
    ) -> list[Seen]:
        """Poll until ``condition``; fail after ``timeout``, or sooner when nothing new has
        arrived for ``stalled_after`` seconds."""
        last_count, last_change = len(self.seen), time.monotonic()

        def stalled() -> None:
            nonlocal last_count, last_change
            if len(self.seen) != last_count:
                last_count, last_change = len(self.seen), time.monotonic()
            elif stalled_after is not None and time.monotonic() - last_change > stalled_after:
                raise AssertionError(f"nothing new for {stalled_after:.0f} s waiting for {what}")

        def holds() -> bool:
            self.poll()  # waits up to 0.2 s for records
            return condition(self.seen)

        wait_until(holds, timeout, what or str(condition), every_s=0, check=stalled)
        return self.seen

    def close(self) -> None:
        self._consumer.close()

    def of(self, name: str, **fields: Any) -> list[Seen]:
        return [
            s
            for s in self.seen
            if s.name == name and all(s.record.get(k) == v for k, v in fields.items())
        ]
