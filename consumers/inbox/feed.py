"""The feed: task and escalation topics of one municipality's units into the task store, and
erasures (``erasures``: a person's tasks deleted, ``consumers.inbox.erasures``).

At least once, stored once: a batch is written to the database in one transaction (upserts
keyed by task id), dead letters are acknowledged by Kafka, and only then are the offsets
committed. A crash in between re-delivers the batch, which changes nothing the second time.

Each record is processed in a CONSUMER span continuing its ``traceparent`` (outcome stored,
duplicate or dead_letter); the consumer's lag per partition is measured after each poll.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

import schemas
from bus import telemetry
from bus.crypto import Keyring
from bus.erasure.fact import Erasure
from bus.erasure.record import NotAnErasure, erasure_of
from bus.failpoints import failpoint
from bus.limits import RecordLimits
from bus.records import Publisher, Received, close, commit, lags, poll
from bus.telemetry import BASIS, EVENT_ID, KOMMUNEKODE, OUTCOME, TASK_ID, UNIT
from consumers.inbox.erasures import Erasures
from consumers.inbox.records import (
    COMPONENT,
    Destination,
    Outgoing,
    PassedOver,
    Rejected,
    dead_letter,
    read,
)
from consumers.inbox.settings import InboxSettings
from consumers.inbox.store import TaskStore
from consumers.inbox.tasks import Escalation, Task
from consumers.inbox.tracing import (
    COMPONENT_ATTRIBUTE,
    ERROR_TYPE,
    dead_letters,
    meter,
    tasks_stored,
    tracer,
)

log = logging.getLogger(__name__)
Clock = Callable[[], dt.datetime]
Outcome = Task | Escalation | Erasure | Rejected | PassedOver


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def destinations(settings: InboxSettings) -> dict[str, Destination]:
    """Every topic the inbox reads, and what it carries for whom."""
    kommunekode = settings.inbox_kommunekode
    found = {t: Destination("tasks", kommunekode, u) for t, u in settings.task_topics.items()}
    for topic, unit in settings.escalation_topics.items():
        found[topic] = Destination("escalations", kommunekode, unit)
    return found


@dataclass
class Batch:
    """What one poll brought, sorted into what to store and what to dead-letter."""

    tasks: list[Task] = field(default_factory=list)
    escalations: list[Escalation] = field(default_factory=list)
    dead_letters: list[Outgoing] = field(default_factory=list)
    erasures: list[Erasure] = field(default_factory=list)
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)  # one per record, in order


def sort_batch(
    records: list[Received],
    routes: Mapping[str, Destination],
    deadletter_topic: str,
    now: dt.datetime,
    limits: RecordLimits,
    erasures_topic: str | None = None,
    keyring: Keyring | None = None,
) -> Batch:
    batch = Batch()
    for r in records:
        destination = routes.get(r.topic)
        outcome: Outcome
        if r.topic == erasures_topic:
            outcome = read_erasure(r.key, r.value, limits.max_record_bytes)
        elif destination is None:
            outcome = Rejected("validate:unknown_topic", f"the inbox does not read {r.topic}")
        else:
            outcome = read(destination, r.value, r.headers, limits.max_record_bytes, keyring)
        if isinstance(outcome, Task):
            batch.tasks.append(outcome)
        elif isinstance(outcome, PassedOver):
            log.info(
                "Passed over task %s of event %s for %s: the person's data key is erased",
                outcome.task_id, outcome.event_id, outcome.subject_pseudonym,
            )  # fmt: skip
        elif isinstance(outcome, Escalation):
            batch.escalations.append(outcome)
        elif isinstance(outcome, Erasure):
            batch.erasures.append(outcome)
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
                    limits=limits,
                )
            )
        batch.next_offsets[(r.topic, r.partition)] = r.offset + 1
        batch.outcomes.append(outcome)
    return batch


def read_erasure(key: bytes | None, value: bytes | None, max_size: int) -> Erasure | Rejected:
    """An erasure record from ``erasures``; Rejected (a dead letter) if it is not one, or not
    keyed by the erased person's pseudonym."""
    try:
        return erasure_of(key, value, max_size)
    except schemas.DecodeError as exc:
        return Rejected(f"decode:{exc.code}", exc.reason)
    except NotAnErasure as exc:
        return Rejected("validate:not_an_erasure", str(exc))


def _start_spans(records: Sequence[Received], group: str, started_ns: int) -> list[trace.Span]:
    """A CONSUMER span per record, each a child of the record's own ``traceparent``."""
    return [
        tracer.start_span(
            telemetry.span_name("process", r.topic),
            context=telemetry.extract(r.headers),
            kind=SpanKind.CONSUMER,
            attributes=telemetry.messaging_attributes(
                "process", r.topic, r.partition, r.offset, consumer_group=group
            ),
            start_time=started_ns,
        )
        for r in records
    ]


def _finish_spans(
    spans: Sequence[trace.Span], batch: Batch, new_task_ids: set[str], erased_ids: set[str]
) -> None:
    """Outcome on each record's span, the counts, and the spans ended."""
    first_seen: set[str] = set()
    for span, outcome in zip(spans, batch.outcomes, strict=True):
        if isinstance(outcome, Erasure):
            span.set_attribute(OUTCOME, "erasure")
        elif isinstance(outcome, Task) and outcome.task_id in erased_ids:
            span.set_attributes({TASK_ID: outcome.task_id, OUTCOME: "erased"})
        elif isinstance(outcome, Rejected):
            span.set_attributes({OUTCOME: "dead_letter", ERROR_TYPE: outcome.error_type})
            if outcome.event_id:
                span.set_attribute(EVENT_ID, outcome.event_id)
            span.set_status(Status(StatusCode.ERROR, outcome.error_type))
            dead_letters.add(1, {COMPONENT_ATTRIBUTE: COMPONENT, ERROR_TYPE: outcome.error_type})
        elif isinstance(outcome, PassedOver):
            where = {UNIT: outcome.unit, KOMMUNEKODE: outcome.kommunekode}
            span.set_attributes(
                {OUTCOME: "erased", TASK_ID: outcome.task_id, EVENT_ID: outcome.event_id, **where}
            )
        else:
            where = {UNIT: outcome.unit, KOMMUNEKODE: outcome.kommunekode}
            span.set_attributes({TASK_ID: outcome.task_id, EVENT_ID: outcome.event_id, **where})
            if isinstance(outcome, Escalation):
                span.set_attributes({OUTCOME: "stored", "ungebus.escalation.level": outcome.level})
            elif outcome.task_id in new_task_ids and outcome.task_id not in first_seen:
                first_seen.add(outcome.task_id)
                span.set_attributes({OUTCOME: "stored", BASIS: outcome.basis.id})
                tasks_stored.add(1, where)
            else:
                span.set_attributes({OUTCOME: "duplicate", BASIS: outcome.basis.id})
        span.end()


def _in_traces(dead: list[Outgoing], spans: Sequence[trace.Span], batch: Batch) -> list[Outgoing]:
    """Each dead letter with its record's span as ``traceparent``: the failure is in the trace."""
    rejected = [i for i, o in enumerate(batch.outcomes) if isinstance(o, Rejected)]
    return [
        replace(out, headers=telemetry.inject(out.headers, trace.set_span_in_context(spans[i])))
        for i, out in zip(rejected, dead, strict=True)
    ]


class Fenced(RuntimeError):
    """A fatal consumer error: another process joined this inbox's consumer group under the
    same instance name (the one fatal error librdkafka's consumer has)."""

    def __init__(self, settings: InboxSettings) -> None:
        super().__init__(
            f"another inbox joined consumer group {settings.group_id} as "
            f"{settings.group_instance_id(COMPONENT)} and took this one's place; give each "
            "inbox of one municipality its own UNGEBUS_CONSUMER_INSTANCE"
        )


def _fenced(exc: KafkaException) -> bool:
    error = exc.args[0] if exc.args else None
    return isinstance(error, KafkaError) and (
        error.fatal() or error.code() in (KafkaError._FATAL, KafkaError.FENCED_INSTANCE_ID)
    )


class TaskFeed:
    """Consumes, stores, commits. ``poll_once`` for tests and tools; ``run`` for the service."""

    def __init__(
        self,
        settings: InboxSettings,
        store: TaskStore,
        publisher: Publisher,
        clock: Clock = utc_now,
        batch_size: int = 200,
        keyring: Keyring | None = None,
    ) -> None:
        self._settings = settings
        self._keyring = keyring
        self._store = store
        self._erasures = Erasures(store)
        self._publisher = publisher
        self._clock = clock
        self._batch_size = batch_size
        self._routes = destinations(settings)
        self._consumer: Consumer | None = None
        self._lags: dict[tuple[str, int], int] = {}
        self._lag_gauge = telemetry.consumer_lag_gauge(meter, settings.group_id, self.lags)

    def lags(self) -> dict[tuple[str, int], int]:
        """Messages behind per (topic, partition), as of the last poll."""
        return self._lags

    def _connect(self) -> Consumer:
        if self._consumer is None:
            settings = self._settings
            consumer = Consumer(settings.member_config(settings.group_id, COMPONENT))
            subscribed = time.monotonic()

            def assigned(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
                log.info(
                    "Reading %d partitions as %s in group %s (%.1f s after subscribing)",
                    len(partitions),
                    settings.group_instance_id(COMPONENT) or "a dynamic member",
                    settings.group_id,
                    time.monotonic() - subscribed,
                )

            topics = sorted([*self._routes, settings.topics.erasures])
            consumer.subscribe(topics, on_assign=assigned)
            self._consumer = consumer
        return self._consumer

    def poll_once(self, timeout_s: float = 1.0) -> int:
        """Handle what arrives within ``timeout_s``; return how many records were handled."""
        consumer = self._connect()
        messages = poll(consumer, self._batch_size, timeout_s, COMPONENT)
        self._measure_lag(consumer)
        if not messages:
            return 0
        started = time.time_ns()
        now = self._clock()
        settings = self._settings
        batch = sort_batch(
            messages,
            self._routes,
            settings.topics.deadletter,
            now,
            settings.record_limits,
            erasures_topic=settings.topics.erasures,
            keyring=self._keyring,
        )
        spans = _start_spans(messages, self._settings.group_id, started)
        try:
            tasks, erased = self._erasures.not_erased(batch.tasks)
            new_task_ids = self._store.save(tasks, batch.escalations, received_at=now)
            if batch.erasures:
                deleted = self._erasures.apply(batch.erasures)
                log.info("Erased %d people: %d tasks deleted", len(batch.erasures), deleted)
            if batch.dead_letters:
                self._publisher.publish(_in_traces(batch.dead_letters, spans, batch))
            failpoint("inbox.feed.stored")  # the fault suite's F5: stored, not yet committed
            commit(consumer, batch.next_offsets)
        except BaseException as exc:
            for span in spans:  # the batch will be read again: these attempts failed
                span.set_status(Status(StatusCode.ERROR, f"not stored: {type(exc).__name__}"))
                span.end()
            raise
        _finish_spans(spans, batch, new_task_ids, {t.task_id for t in erased})
        return len(messages)

    def _measure_lag(self, consumer: Consumer) -> None:
        """High watermark minus position, from what the client knows already (no request)."""
        measured = lags(consumer)
        if measured is not None:
            self._lags = measured

    def run(self, stop: threading.Event, retry_s: float = 5.0) -> None:
        """Poll until ``stop``; after a failure, reconnect so the uncommitted batch is re-read.

        Raises :class:`Fenced` when another inbox took this one's place in the group."""
        try:
            while not stop.is_set():
                try:
                    self.poll_once(timeout_s=0.5)
                except Exception as exc:
                    if isinstance(exc, KafkaException) and _fenced(exc):
                        raise Fenced(self._settings) from exc  # retrying would fence the other
                    log.exception("inbox feed failed; reconnecting in %g s", retry_s)
                    self._disconnect()
                    stop.wait(retry_s)
        finally:
            self.close()

    def close(self) -> None:
        self._lag_gauge.close()
        self._disconnect()

    def _disconnect(self) -> None:
        self._lags = {}
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            close(consumer, COMPONENT)
