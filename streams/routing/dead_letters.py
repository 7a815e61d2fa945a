"""Dead letters of the router and the tracker, each small enough for the producer to take.

A dead letter copies the record it is about (key, value, headers) when that fits beside its
reason, and keeps it by reference (SHA-256, size, topic/partition/offset) when it does not
(``schemas.dead_letters``), so writing the dead letter of a hostile record cannot fail the
way the record did. Its Kafka key is the original key only when that is short.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import schemas
from bus.limits import RecordLimits
from streams.routing.outputs import COMPONENT, Headers, InMessage, Output, record_headers

MAX_KEY = 256  # a longer original key is kept (or referenced) in the letter, not as its key
TRACE_SLACK = 128  # the traceparent header a send span adds (``streams.runtime.observe``)
NO_POSITION = -1  # partition and offset of a record that was never consumed


def dead_letter(
    topic: str,
    *,
    reason: str,
    error_type: str,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Headers,
    event_id: str | None,
    now: dt.datetime,
    limits: RecordLimits,
    component: str = COMPONENT,
) -> Output:
    record = {
        "reason": reason,
        "error_type": error_type,
        "component": component,
        "event_id": event_id,
        "source_topic": source_topic,
        "source_partition": source_partition,
        "source_offset": source_offset,
        "original_key": key,
        "original_value": value,
        "original_headers": [{"key": k, "value": v} for k, v in headers],
        "failed_at": now,
    }
    letter_id = f"{source_topic}/{source_partition}/{source_offset}"
    headers_out = record_headers("dead_letter", letter_id, None, now, None, component)
    headers_out += schemas.carried_headers(headers)  # a retried record's count, carried on
    letter_key = key if key is not None and len(key) <= MAX_KEY else None
    budget = limits.value_budget(letter_key, headers_out) - TRACE_SLACK
    value_bytes = schemas.encode_dead_letter(record, max_size=budget)
    labels = {"ungebus.record": "dead_letter", "ungebus.error_type": error_type}
    return Output(topic, letter_key, value_bytes, headers_out, labels=labels)


@dataclass
class DeadLetters:
    """One component's dead letters: of a record it consumed, or of a record it made on its
    own (a timer's) that Kafka refused. ``counted`` hears each error type (metrics)."""

    topic: str
    limits: RecordLimits
    component: str = COMPONENT
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    counted: Callable[[str], None] = lambda _error_type: None

    def of_record(self, message: InMessage, reason: str, error_type: str) -> Output:
        """A consumed record that cannot be processed or written, with the reason."""
        self.counted(error_type)
        return dead_letter(
            self.topic,
            reason=reason,
            error_type=error_type,
            source_topic=message.topic,
            source_partition=message.partition,
            source_offset=message.offset,
            key=message.key,
            value=message.value,
            headers=message.headers,
            event_id=message.header("ce_id"),
            now=self.clock(),
            limits=self.limits,
            component=self.component,
        )

    def of_output(self, output: Output, reason: str, error_type: str) -> Output:
        """A record this component made, not caused by one record, that Kafka refused: kept
        in the letter as if consumed from its topic at no position."""
        self.counted(error_type)
        return dead_letter(
            self.topic,
            reason=reason,
            error_type=error_type,
            source_topic=output.topic,
            source_partition=NO_POSITION,
            source_offset=NO_POSITION,
            key=output.key,
            value=output.value,
            headers=output.headers,
            event_id=output.header("ce_id"),
            now=self.clock(),
            limits=self.limits,
            component=self.component,
        )
