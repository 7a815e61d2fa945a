"""Kafka records in and out of the consumers (confluent-kafka), in plain types.

The inbox and the audit store read a batch, store it, dead-letter what they cannot use and
commit only after that; what they share of it lives here, so neither imports the other:
``poll`` (a batch of :class:`Received`), ``lags`` (for the lag gauge), ``dead_letter`` (an
:class:`Outgoing` for ``deadletter``, with the reason and the original bytes), ``Publisher``
(returns once Kafka acknowledged every record) and ``commit`` (synchronous, after the
database).

A read that leaves nothing behind (the dead-letter reader, replay's history, the inbox's
read-back of its acknowledgements) shares ``end_offsets`` and ``read_to_ends``: partitions
assigned from given offsets, read to the ends fixed before, nothing committed.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

import schemas
from bus.limits import RecordLimits
from schemas.mapping import to_millis

log = logging.getLogger(__name__)
Headers = list[tuple[str, str | bytes | None]]
TRACE_SLACK = 128  # the traceparent header a consumer adds to a dead letter
MAX_KEY = 256  # a longer original key is kept (or referenced) in a dead letter, not as its key


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


def poll(consumer: Consumer, batch_size: int, timeout_s: float, who: str) -> list[Received]:
    """What arrives within ``timeout_s`` (up to ``batch_size``); a fatal client error raises."""
    messages: list[Received] = []
    for message in consumer.consume(num_messages=batch_size, timeout=timeout_s):
        error = message.error()
        if error is not None:
            raise_if_fatal(error, who)
            continue
        messages.append(received(message))
    return messages


def raise_if_fatal(error: KafkaError, who: str) -> None:
    """A fatal client error raises (a KafkaException); any other is logged."""
    if error.fatal() or error.code() == KafkaError._FATAL:  # e.g. fenced (static member)
        raise KafkaException(error)
    log.warning("%s consumer: %s", who, error.str())


def close(consumer: Consumer, who: str) -> None:
    """Leave the group now (a successor need not wait for this member's session); closing
    after a broker failure may itself fail, which is logged, not raised."""
    try:
        consumer.close()
    except Exception:
        log.warning("%s consumer did not close cleanly", who, exc_info=True)


def commit(consumer: Consumer, next_offsets: Mapping[tuple[str, int], int]) -> None:
    """Commit (synchronously) the next offset to read per (topic, partition)."""
    if next_offsets:
        offsets = [TopicPartition(t, p, o) for (t, p), o in next_offsets.items()]
        consumer.commit(offsets=offsets, asynchronous=False)


class NotReadToEnd(RuntimeError):
    """A topic was not read to its ends in time; the message names the topic."""


def end_offsets(consumer: Consumer, topic: str, timeout_s: float) -> dict[int, int]:
    """Each partition's end offset (the next record's), as Kafka has it now; what the client
    raises (a KafkaException, a KeyError for a topic not in the answer, a TypeError for a
    watermark request that timed out) is left to the caller."""
    found = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)[1]
        for p in found.partitions
    }


def read_to_ends(
    consumer: Consumer,
    topic: str,
    starts: Mapping[int, int],
    ends: Mapping[int, int],
    on_error: Callable[[KafkaError, int | None], None],
    *,
    batch: int = 500,
    poll_s: float = 0.5,
    deadline_s: float | None = None,
    stalled_s: float | None = None,
) -> Generator[Message, None, None]:
    """The records of ``topic``'s partitions in ``ends``, each from its offset in ``starts``
    (or a logical one, e.g. ``OFFSET_END``) to just before its end, each partition in its
    order; the partitions are assigned (never a group joined nor an offset committed) and
    unassigned after.

    A partition is done at its last record before its end, or at a partition-EOF at or past
    its end (``enable.partition.eof``). Any other error goes to ``on_error`` with its
    partition (None if not one still read), which raises to stop the read or returns to pass
    it over. :class:`NotReadToEnd` (naming the topic) when ``deadline_s`` passed, or when
    nothing arrived for ``stalled_s``.
    """
    left = {p: end for p, end in ends.items()}
    if not left:
        return
    consumer.assign([TopicPartition(topic, p, starts[p]) for p in left])
    try:
        deadline = None if deadline_s is None else time.monotonic() + deadline_s
        last = time.monotonic()
        while left:
            if deadline is not None and time.monotonic() > deadline:
                raise NotReadToEnd(f"{topic}: not read to its end in time")
            messages = consumer.consume(num_messages=batch, timeout=poll_s)
            if messages:
                last = time.monotonic()
            elif stalled_s is not None and time.monotonic() - last > stalled_s:
                raise NotReadToEnd(f"reading {topic} stalled: nothing arrived for {stalled_s:g} s")
            for message in messages:
                partition = message.partition() or 0
                end = left.get(partition) if message.topic() == topic else None
                error = message.error()
                offset = message.offset() or 0
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        on_error(error, None if end is None else partition)
                    elif end is not None and offset >= end:
                        del left[partition]
                    continue
                if end is None:
                    continue
                if offset >= end:
                    del left[partition]
                    continue
                yield message
                if offset + 1 >= end:
                    del left[partition]
    finally:
        consumer.unassign()


def lags(consumer: Consumer) -> dict[tuple[str, int], int] | None:
    """Messages behind per (topic, partition), from what the client knows (no request); None
    when the client cannot tell (keep the last measurement then)."""
    found: dict[tuple[str, int], int] = {}
    try:
        for tp in consumer.position(consumer.assignment()):
            if tp.offset < 0:  # nothing fetched yet on this partition
                continue
            marks = consumer.get_watermark_offsets(tp, cached=True)
            if marks and marks[1] >= 0:
                found[(tp.topic, tp.partition)] = max(0, marks[1] - tp.offset)
    except KafkaException:
        return None
    return found


@dataclass(frozen=True)
class Outgoing:
    """One record to publish: topic, key, Avro wire bytes, headers."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers


def dead_letter(
    topic: str,
    source: Received,
    *,
    reason: str,
    error_type: str,
    component: str,
    event_id: str | None,
    now: dt.datetime,
    limits: RecordLimits,
) -> Outgoing:
    """``source`` for ``deadletter``: its reason, position and original bytes (or, too large
    to copy, their digest and size), within what the producer takes (``bus.limits``).

    ``reason`` must say where and why, never quote the record (it may hold a CPR number).
    """
    record = {
        "reason": reason,
        "error_type": error_type,
        "component": component,
        "event_id": event_id,
        "source_topic": source.topic,
        "source_partition": source.partition,
        "source_offset": source.offset,
        "original_key": source.key,
        "original_value": source.value,
        "original_headers": [{"key": k, "value": v} for k, v in source.headers],
        "failed_at": now,
    }
    time_header = to_millis(now).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    headers: Headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", f"{source.topic}/{source.partition}/{source.offset}".encode()),
        ("ce_type", str(schemas.event_type_of("dead_letter")).encode()),
        ("ce_source", f"/ungebus/{component}".encode()),
        ("ce_time", time_header.encode()),
        ("content-type", b"application/avro"),
        *schemas.carried_headers(source.headers),  # a retried record's count, carried on
    ]
    letter_key = source.key if source.key is not None and len(source.key) <= MAX_KEY else None
    budget = limits.value_budget(letter_key, headers) - TRACE_SLACK
    value = schemas.encode_dead_letter(record, max_size=budget)
    return Outgoing(topic, letter_key, value, headers)


class NotDelivered(RuntimeError):
    """Kafka did not acknowledge a record in time, or refused it."""


class Publisher:
    """An idempotent (acks=all) producer; ``publish`` returns once every record is acknowledged.

    Thread-safe: the inbox's web threads and its feed may publish at the same time.
    """

    def __init__(self, producer_config: dict[str, Any], timeout_s: float) -> None:
        self._producer = Producer(producer_config)
        self._timeout_s = timeout_s

    def publish(self, records: Sequence[Outgoing]) -> list[tuple[int, int]]:
        """(partition, offset) of each record, once Kafka acknowledged them all;
        NotDelivered if Kafka refused one (in ``produce``, or when delivering it)."""
        futures: list[Future[tuple[int, int]]] = []
        for out in records:
            future: Future[tuple[int, int]] = Future()
            futures.append(future)
            try:
                self._producer.produce(
                    out.topic,
                    key=out.key,
                    value=out.value,
                    headers=out.headers,
                    on_delivery=_settle(future),
                )
            except KafkaException as exc:  # too large, ...: refused before it was sent
                future.set_exception(NotDelivered(f"Kafka refused the record: {exc}"))
        deadline = time.monotonic() + self._timeout_s
        while not all(f.done() for f in futures):
            if time.monotonic() > deadline:
                raise NotDelivered(f"Kafka did not acknowledge within {self._timeout_s:g} s")
            self._producer.poll(0.05)
        return [future.result() for future in futures]  # raises NotDelivered

    def close(self) -> None:
        self._producer.flush(self._timeout_s)


def _settle(future: Future[tuple[int, int]]) -> Any:
    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is None:
            future.set_result((msg.partition() or 0, msg.offset() or 0))
        else:
            future.set_exception(NotDelivered(f"Kafka refused the record: {err.str()}"))

    return on_delivery
