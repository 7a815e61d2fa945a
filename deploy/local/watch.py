"""Reads the bus's topics from a moment on and folds them into a :class:`Tally`.

It reads without a committed position (a throw-away group, manual assignment), so it never
disturbs a component, and starts at the offsets the topics had when it started: what it shows
is what happened since.

Inbound records are sealed per person (``bus.crypto``): the summary counts them from their
clear CloudEvents headers (type, id, source), and holds no data keys.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import unquote

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

import schemas
from bus.crypto import is_sealed
from bus.settings import Settings
from deploy.local.summary import Tally
from schemas import KOMMUNEKODER, UNITS

T = TypeVar("T")


class WatchError(RuntimeError):
    """Kafka did not answer the summary's questions in time."""


def watched_topics(settings: Settings) -> list[str]:
    """Partner events, consent, decisions, dead letters, escalations and handover states."""
    topics = settings.topics
    names = [topics.inbound_events, topics.audit_routing, topics.deadletter]
    for code in KOMMUNEKODER:
        names.append(topics.handovers(code))
        names += [topics.escalations(code, unit) for unit in UNITS]
    return names


class TopicWatcher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.inbound = {settings.topics.inbound_events}
        self._tally = Tally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._position: dict[tuple[str, int], int] = {}
        self._consumer = Consumer(
            settings.consumer_config(
                f"{settings.topic_prefix}ungebus-summary-{uuid.uuid4().hex[:8]}",
                **{"enable.partition.eof": False, "log_level": 3},
            )
        )
        self._thread = threading.Thread(target=self._run, name="summary-watch", daemon=True)

    def start(self) -> None:
        """Assign every watched partition at its current end, then read in the background."""
        names = watched_topics(self.settings)
        try:
            metadata = AdminClient(self.settings.kafka_config()).list_topics(timeout=10)
        except KafkaException as exc:
            raise WatchError(f"Kafka did not list its topics: {exc}") from exc
        partitions = [(n, p) for n in names for p in metadata.topics[n].partitions]
        self._position = self._ends(partitions)
        self._consumer.assign([TopicPartition(n, p, o) for (n, p), o in self._position.items()])
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self._consumer.close()

    def read(self, look: Callable[[Tally], T]) -> T:
        """``look`` at the tally while no record is being added."""
        with self._lock:
            return look(self._tally)

    @contextmanager
    def editing(self) -> Iterator[Tally]:
        with self._lock:
            yield self._tally

    def inbound_ends(self) -> dict[tuple[str, int], int]:
        """The current end offsets of the partner and consent topics."""
        return self._ends([tp for tp in self._position if tp[0] in self.inbound])

    def _ends(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        # A client per call, kept until its answers are in, then gone: none outlives the broker.
        admin = AdminClient(self.settings.kafka_config())
        futures = admin.list_offsets(
            {TopicPartition(n, p): OffsetSpec.latest() for n, p in partitions},
            request_timeout=10,
        )
        try:
            return {(tp.topic, tp.partition): f.result(15).offset for tp, f in futures.items()}
        except (KafkaException, FutureTimeout) as exc:
            raise WatchError(f"Kafka did not tell where its topics end: {exc}") from exc

    def has_read(self, ends: dict[tuple[str, int], int]) -> bool:
        """Whether every partition has been read up to ``ends``."""
        with self._lock:
            return all(self._position.get(tp, 0) >= end for tp, end in ends.items())

    def _run(self) -> None:
        while not self._stop.is_set():
            messages = self._consumer.consume(500, timeout=0.5)
            decoded = [(m, self._decode(m)) for m in messages if not m.error()]
            with self._lock:
                for message, item in decoded:
                    where = (str(message.topic()), int(message.partition() or 0))
                    self._position[where] = int(message.offset() or 0) + 1
                    if item is None:
                        self._tally.undecodable += 1
                    else:
                        self._tally.add(*item)
            for message in messages:
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    time.sleep(0.5)  # librdkafka retries by itself; do not spin

    def _decode(self, message: Any) -> tuple[str, dict[str, Any]] | None:
        # What the bus writes may be as large as its producer takes (a dead letter that
        # copies a record of the largest size decoded is larger than that record).
        limit = self.settings.producer_message_max_bytes
        if is_sealed(message.value()):
            return _from_headers(message.headers() or [])
        try:
            name, _version, record = schemas.decode(message.value() or b"", max_size=limit)
        except schemas.DecodeError:
            return None
        return name, record


def _from_headers(headers: list[tuple[str, bytes | None]]) -> tuple[str, dict[str, Any]] | None:
    """A sealed inbound record as the tally needs it: its kind, event id and source kind,
    from the CloudEvents headers (``/ungebus/source/<kind>/<id>``)."""
    found = {k: (v or b"").decode("utf-8", "replace") for k, v in headers}
    try:
        name = schemas.schema_name_of(found["ce_type"])
        source_kind = unquote(found["ce_source"].split("/")[3])
        envelope = {"event_id": found["ce_id"], "source": {"kind": source_kind}}
    except (KeyError, IndexError, ValueError):
        return None
    return name, {"envelope": envelope}
