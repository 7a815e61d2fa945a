"""The feed: ``audit.routing`` into the audit store, each decision once.

At least once, stored once: a batch is written in one transaction (insert-or-ignore by the
decision's deterministic id), dead letters are acknowledged by Kafka, and only then are the
offsets committed; a crash in between re-delivers the batch, which changes nothing the second
time. A record that cannot be decoded, or whose values the database refuses (PostgreSQL
refuses a NUL character in text), goes to ``deadletter`` with the reason and the feed goes on.

Each record is processed in a CONSUMER span continuing its ``traceparent`` (outcome stored,
duplicate or dead_letter); the consumer's lag per partition is measured after each poll.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from confluent_kafka import Consumer
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from bus import telemetry
from bus.records import Outgoing, Publisher, Received, close, commit, dead_letter, lags, poll
from bus.telemetry import EVENT_ID, OUTCOME
from consumers.audit.decisions import AuditedDecision, AuditedErasure
from consumers.audit.records import Rejected, read
from consumers.audit.settings import AuditSettings
from consumers.audit.store import AuditStore

COMPONENT = "audit-store"
SCOPE = "ungebus.audit"
ERROR_TYPE = "ungebus.error_type"

log = logging.getLogger(__name__)
tracer = telemetry.tracer(SCOPE)
meter = telemetry.meter(SCOPE)
decisions_counted = meter.create_counter(
    "ungebus.audit.decisions", unit="{decision}", description="decisions read, by outcome"
)
dead_letters = meter.create_counter(
    "ungebus.deadletters", unit="{record}", description="records sent to the dead-letter topic"
)
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Batch:
    """What one poll brought: decisions to store, rejections to dead-letter, where to commit."""

    decisions: list[tuple[int, AuditedDecision]] = field(default_factory=list)
    erasures: list[AuditedErasure] = field(default_factory=list)
    rejected: list[tuple[int, Rejected]] = field(default_factory=list)
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)


def sort_batch(records: Sequence[Received]) -> Batch:
    """Index of each record in ``records`` with what it is."""
    batch = Batch()
    for i, r in enumerate(records):
        try:
            outcome = read(r.value, r.offset)
        except Exception as exc:  # a bug, not the record: still no reason to stop the feed
            outcome = Rejected(f"read:{type(exc).__name__}", "the record could not be read")
        if isinstance(outcome, Rejected):
            batch.rejected.append((i, outcome))
        elif isinstance(outcome, AuditedErasure):
            batch.erasures.append(outcome)
        else:
            batch.decisions.append((i, outcome))
        batch.next_offsets[(r.topic, r.partition)] = r.offset + 1
    return batch


def refused_by_the_database(exc: Exception) -> bool:
    """A value the database refuses, not the database being away: worth one try per record."""
    if isinstance(exc, DataError | IntegrityError):
        return True
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


def save_batch(
    store: AuditStore, batch: Batch, records: Sequence[Received], now: dt.datetime
) -> set[str]:
    """The batch in one transaction; if the database refuses a value, each on its own, and
    what it refuses joins ``batch.rejected``. The ids stored new."""
    try:
        return store.save([d for _, d in batch.decisions], now)
    except Exception as exc:
        if not refused_by_the_database(exc):
            raise
        log.warning("the database refused a batch (%s); storing one by one", type(exc).__name__)
    new: set[str] = set()
    kept: list[tuple[int, AuditedDecision]] = []
    for i, decision in batch.decisions:
        try:
            new |= store.save([decision], now)
            kept.append((i, decision))
        except Exception as exc:
            if not refused_by_the_database(exc):
                raise
            r = records[i]
            log.warning("dead-lettering %s[%d]@%d: the database refused it (%s)",
                        r.topic, r.partition, r.offset, type(exc).__name__)  # fmt: skip
            reason = f"the database refused the decision ({type(exc).__name__})"
            refused = Rejected(f"store:{type(exc).__name__}", reason, decision.event_id)
            batch.rejected.append((i, refused))
    batch.decisions = kept
    return new


class AuditFeed:
    """Consumes, stores, commits. ``poll_once`` for tests and tools; ``run`` for the service."""

    def __init__(
        self,
        settings: AuditSettings,
        store: AuditStore,
        publisher: Publisher,
        clock: Clock = utc_now,
        on_assigned: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._on_assigned = on_assigned
        self._consumer: Consumer | None = None
        self._lags: dict[tuple[str, int], int] = {}
        self._lag_gauge = telemetry.consumer_lag_gauge(meter, settings.group_id, self.lags)

    def lags(self) -> dict[tuple[str, int], int]:
        """Messages behind per (topic, partition), as of the last poll."""
        return self._lags

    def _connect(self) -> Consumer:
        if self._consumer is None:
            consumer = Consumer(self._settings.consumer_config(self._settings.group_id))
            topics = self._settings.topics
            consumer.subscribe([topics.audit_routing, topics.erasures], on_assign=self._assigned)
            self._consumer = consumer
        return self._consumer

    def _assigned(self, _consumer: Consumer, _partitions: list[Any]) -> None:
        if self._on_assigned is not None:
            self._on_assigned()

    def poll_once(self, timeout_s: float = 1.0) -> int:
        """Handle what arrives within ``timeout_s``; return how many records were handled."""
        consumer = self._connect()
        records = poll(consumer, self._settings.audit_batch_size, timeout_s, COMPONENT)
        if (measured := lags(consumer)) is not None:
            self._lags = measured
        if not records:
            return 0
        started, now = time.time_ns(), self._clock()
        batch = sort_batch(records)
        spans = [self._span(r, started) for r in records]
        try:
            new = save_batch(self._store, batch, records, now)
            self._store.save_erasures(batch.erasures)
            letters = [self._letter(records[i], rejected, spans[i], now) for i, rejected in
                       batch.rejected]  # fmt: skip
            if letters:
                self._publisher.publish(letters)
            commit(consumer, batch.next_offsets)
        except BaseException as exc:
            for span in spans:  # the batch will be read again: these attempts failed
                span.set_status(Status(StatusCode.ERROR, f"not stored: {type(exc).__name__}"))
                span.end()
            raise
        _finish(spans, batch, new)
        return len(records)

    def _span(self, r: Received, started_ns: int) -> trace.Span:
        return tracer.start_span(
            telemetry.span_name("process", r.topic),
            context=telemetry.extract(r.headers),
            kind=SpanKind.CONSUMER,
            attributes=telemetry.messaging_attributes(
                "process", r.topic, r.partition, r.offset, consumer_group=self._settings.group_id
            ),
            start_time=started_ns,
        )

    def _letter(
        self, r: Received, rejected: Rejected, span: trace.Span, now: dt.datetime
    ) -> Outgoing:
        # Where and why, never what: the record may hold personal data.
        log.warning("dead-lettering %s[%d]@%d: %s", r.topic, r.partition, r.offset,
                    rejected.error_type)  # fmt: skip
        out = dead_letter(
            self._settings.topics.deadletter,
            r,
            reason=rejected.reason,
            error_type=rejected.error_type,
            component=COMPONENT,
            event_id=rejected.event_id,
            now=now,
            limits=self._settings.record_limits,
        )
        return replace(out, headers=telemetry.inject(out.headers, trace.set_span_in_context(span)))

    def run(self, stop: threading.Event, retry_s: float = 5.0) -> None:
        """Poll until ``stop``; after a failure, reconnect so the uncommitted batch is re-read."""
        while not stop.is_set():
            try:
                self.poll_once(timeout_s=0.5)
            except Exception:
                log.exception("audit feed failed; reconnecting in %g s", retry_s)
                self._disconnect()
                stop.wait(retry_s)
        self.close()

    def close(self) -> None:
        self._lag_gauge.close()
        self._disconnect()

    def _disconnect(self) -> None:
        self._lags = {}
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            close(consumer, COMPONENT)


def _finish(spans: Sequence[trace.Span], batch: Batch, new: set[str]) -> None:
    """Outcome on each record's span, the counts, and the spans ended."""
    outcomes: dict[int, dict[str, Any]] = {}
    first_seen: set[str] = set()
    for i, decision in batch.decisions:
        fresh = decision.decision_id in new and decision.decision_id not in first_seen
        first_seen.add(decision.decision_id)
        outcome = "stored" if fresh else "duplicate"
        decisions_counted.add(1, {OUTCOME: outcome})
        outcomes[i] = {OUTCOME: outcome, EVENT_ID: decision.event_id}
    for i, rejected in batch.rejected:
        spans[i].set_status(Status(StatusCode.ERROR, rejected.error_type))
        dead_letters.add(1, {"ungebus.component": COMPONENT, ERROR_TYPE: rejected.error_type})
        outcomes[i] = {OUTCOME: "dead_letter", ERROR_TYPE: rejected.error_type}
        if rejected.event_id:
            outcomes[i][EVENT_ID] = rejected.event_id
    for i, span in enumerate(spans):
        span.set_attributes(outcomes.get(i, {}))
        span.end()
