"""The feed: task and escalation topics of one municipality's units into the task store.

At least once, stored once: a batch is written to the database in one transaction (upserts
keyed by task id), dead letters are acknowledged by Kafka, and only then are the offsets
committed. A crash in between re-delivers the batch, which changes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from consumers.inbox.publish import Publisher
from consumers.inbox.records import Destination, Outgoing, Rejected, dead_letter, read
from consumers.inbox.settings import InboxSettings
from consumers.inbox.store import TaskStore
from consumers.inbox.tasks import Escalation, Task

log = logging.getLogger(__name__)
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def destinations(settings: InboxSettings) -> dict[str, Destination]:
    """Every topic the inbox reads, and what it carries for whom."""
    kommunekode = settings.inbox_kommunekode
    found = {t: Destination("tasks", kommunekode, u) for t, u in settings.task_topics.items()}
    for topic, unit in settings.escalation_topics.items():
        found[topic] = Destination("escalations", kommunekode, unit)
    return found


@dataclass(frozen=True)
class Received:
    """One consumed record, in plain types."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def received(message: Message) -> Received:
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    headers = [(k, v.encode() if isinstance(v, str) else v) for k, v in pairs]
    key, value = message.key(), message.value()
    return Received(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=key.encode() if isinstance(key, str) else key,
        value=value.encode() if isinstance(value, str) else value,
        headers=headers,
    )


@dataclass
class Batch:
    """What one poll brought, sorted into what to store and what to dead-letter."""

    tasks: list[Task] = field(default_factory=list)
    escalations: list[Escalation] = field(default_factory=list)
    dead_letters: list[Outgoing] = field(default_factory=list)
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)


def sort_batch(
    records: list[Received],
    routes: Mapping[str, Destination],
    deadletter_topic: str,
    now: dt.datetime,
) -> Batch:
    batch = Batch()
    for r in records:
        destination = routes.get(r.topic)
        outcome: Task | Escalation | Rejected
        if destination is None:
            outcome = Rejected("validate:unknown_topic", f"the inbox does not read {r.topic}")
        else:
            outcome = read(destination, r.value, r.headers)
        if isinstance(outcome, Task):
            batch.tasks.append(outcome)
        elif isinstance(outcome, Escalation):
            batch.escalations.append(outcome)
        else:
            # Where and why, never what: the record may hold a CPR number.
            log.warning(
                "dead-lettering %s[%d]@%d: %s", r.topic, r.partition, r.offset, outcome.error_type
            )
            batch.dead_letters.append(
                dead_letter(
                    deadletter_topic,
                    outcome,
                    source_topic=r.topic,
                    source_partition=r.partition,
                    source_offset=r.offset,
                    key=r.key,
                    value=r.value,
                    headers=r.headers,
                    now=now,
                )
            )
        batch.next_offsets[(r.topic, r.partition)] = r.offset + 1
    return batch


class TaskFeed:
    """Consumes, stores, commits. ``poll_once`` for tests and tools; ``run`` for the service."""

    def __init__(
        self,
        settings: InboxSettings,
        store: TaskStore,
        publisher: Publisher,
        clock: Clock = utc_now,
        batch_size: int = 200,
    ) -> None:
        self._settings = settings
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._batch_size = batch_size
        self._routes = destinations(settings)
        self._consumer: Consumer | None = None

    def _connect(self) -> Consumer:
        if self._consumer is None:
            consumer = Consumer(self._settings.consumer_config(self._settings.group_id))
            consumer.subscribe(sorted(self._routes))
            self._consumer = consumer
        return self._consumer

    def poll_once(self, timeout_s: float = 1.0) -> int:
        """Handle what arrives within ``timeout_s``; return how many records were handled."""
        consumer = self._connect()
        messages: list[Received] = []
        for message in consumer.consume(num_messages=self._batch_size, timeout=timeout_s):
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                log.warning("inbox consumer: %s", error.str())
                continue
            messages.append(received(message))
        if not messages:
            return 0
        now = self._clock()
        batch = sort_batch(messages, self._routes, self._settings.topics.deadletter, now)
        self._store.save(batch.tasks, batch.escalations, received_at=now)
        if batch.dead_letters:
            self._publisher.publish(batch.dead_letters)
        consumer.commit(
            offsets=[TopicPartition(t, p, o) for (t, p), o in batch.next_offsets.items()],
            asynchronous=False,
        )
        return len(messages)

    def run(self, stop: threading.Event, retry_s: float = 5.0) -> None:
        """Poll until ``stop``; after a failure, reconnect so the uncommitted batch is re-read."""
        while not stop.is_set():
            try:
                self.poll_once(timeout_s=0.5)
            except Exception:
                log.exception("inbox feed failed; reconnecting in %g s", retry_s)
                self.close()
                stop.wait(retry_s)
        self.close()

    def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                consumer.close()
            except Exception:  # closing after a broker failure may itself fail
                log.warning("inbox consumer did not close cleanly", exc_info=True)
