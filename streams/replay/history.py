"""Reading history: a topic between two offsets per partition, in each partition's order.

The end of what a replay reads is fixed when it starts (the high watermarks then), so records
arriving meanwhile are left to the router and two reads of one replay see the same history.
Nothing is committed: the consumer is assigned its partitions and offsets, never joins a
group, and leaves no trace on the broker.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from bus.records import read_to_ends
from bus.settings import Settings
from streams.routing.outputs import InMessage

BATCH = 1000
POLL_S = 1.0
TIMEOUT_S = 30.0


class HistoryError(RuntimeError):
    """Kafka would not give the history (no such topic, not allowed, no answer)."""


@dataclass(frozen=True)
class Span:
    """Offsets ``start`` (inclusive) to ``end`` (exclusive) of one partition of a topic."""

    topic: str
    partition: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return max(0, self.end - self.start)


class History:
    """A consumer that reads spans of topics; one per replay, closed after it."""

    def __init__(self, settings: Settings) -> None:
        self._consumer = Consumer(
            settings.kafka_config(
                **{
                    # A name is required; it is never joined nor committed to.
                    "group.id": f"{settings.topic_prefix}ungebus-replay-{uuid.uuid4().hex[:8]}",
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "isolation.level": "read_committed",
                    "enable.partition.eof": True,
                }
            )
        )

    def close(self) -> None:
        self._consumer.close()

    def partitions(self, topic: str) -> list[int]:
        metadata = self._consumer.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            reason = metadata.error.str() if metadata is not None and metadata.error else "absent"
            raise HistoryError(f"cannot read topic {topic}: {reason}")
        return sorted(metadata.partitions)

    def whole(self, topic: str) -> list[Span]:
        """From the first record still kept to the last one there now, per partition."""
        spans = []
        for partition in self.partitions(topic):
            low, high = self._watermarks(topic, partition)
            spans.append(Span(topic, partition, low, high))
        return spans

    def since(self, spans: Iterable[Span], moment: dt.datetime) -> list[Span]:
        """The same spans, each starting at its first record timestamped at or after
        ``moment`` (Kafka's record time: when the bus accepted the record)."""
        spans = list(spans)
        wanted = [
            TopicPartition(s.topic, s.partition, int(moment.timestamp() * 1000)) for s in spans
        ]
        try:
            found = self._consumer.offsets_for_times(wanted, timeout=TIMEOUT_S)
        except KafkaException as exc:
            raise HistoryError(f"cannot find offsets for {moment.isoformat()}: {exc}") from exc
        starts = {(tp.topic, tp.partition): tp.offset for tp in found}
        out = []
        for span in spans:
            start = starts.get((span.topic, span.partition), -1)
            # -1: no record that new; the span is empty.
            out.append(Span(span.topic, span.partition, span.end if start < 0 else start, span.end))
        return out

    def read(self, spans: Iterable[Span]) -> Iterator[InMessage]:
        """Every record of the spans, each partition in its order (partitions interleaved;
        topic after topic)."""
        by_topic: dict[str, list[Span]] = {}
        for span in spans:
            if span.size > 0:
                by_topic.setdefault(span.topic, []).append(span)
        for topic, todo in by_topic.items():
            starts = {s.partition: s.start for s in todo}
            ends = {s.partition: s.end for s in todo}
            records = read_to_ends(
                self._consumer, topic, starts, ends, _refused(topic), batch=BATCH, poll_s=POLL_S
            )
            for message in records:
                yield InMessage(
                    topic, message.partition() or 0, message.offset() or 0, message.key(),
                    message.value(), _headers(message), _seconds(message.timestamp()),
                )  # fmt: skip

    def _watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        try:
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=TIMEOUT_S
            )
        except KafkaException as exc:
            raise HistoryError(f"cannot read the offsets of {topic}[{partition}]: {exc}") from exc
        return int(low), int(high)


# The consumer's group is never joined: what the broker says about it is no matter here.
_IGNORED = frozenset({KafkaError.GROUP_AUTHORIZATION_FAILED})


def _refused(topic: str) -> Callable[[KafkaError, int | None], None]:
    """An error on a partition still read raises, unless it is one of :data:`_IGNORED`."""

    def refused(error: KafkaError, partition: int | None) -> None:
        if partition is not None and error.code() not in _IGNORED:
            raise HistoryError(f"cannot read {topic}[{partition}]: {error.str()}")

    return refused


def _headers(message: Message) -> list[tuple[str, bytes]]:
    raw: Any = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [(str(name), bytes(value or b"")) for name, value in pairs]


def _seconds(timestamp: tuple[int, int]) -> float | None:
    kind, millis = timestamp
    return millis / 1000 if kind != 0 and millis >= 0 else None


def task_ids_on(history: History, topics: Iterable[str]) -> set[str]:
    """Every task id on these task topics (their ``ce_id`` header: no record decoded)."""
    spans = [span for topic in topics for span in history.whole(topic)]
    found: set[str] = set()
    for message in history.read(spans):
        for name, value in message.headers:
            if name == "ce_id":
                found.add(value.decode(errors="replace"))
                break
    return found
