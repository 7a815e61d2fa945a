"""The Kafka gateway: partners that publish to Kafka themselves, checked and forwarded in order.

A partner with its own Kafka client writes to its own topic, ``partner.<name>.events`` (one
topic per partner, so access can be granted per partner; Kafka does not tell a consumer who
produced a record, the topic does). The gateway reads those topics and checks each record as
the HTTP API checks a request — a record that decodes within the bus's bounds, a kind the
partner may send, a source it may claim, keyed by the subject pseudonym — then forwards it
to the ordered inbound topic with its key and CloudEvents headers unchanged (the trace
continued) and its value sealed with the person's data key (``bus.crypto``): partners write
plain records to their own topic, the bus keeps them sealed from there on.
What fails a check goes to ``deadletter`` with the reason. For such a partner "accepted" means
"in the ordered topic", as for every other channel: one person's records are forwarded in the
order the partner's topic holds them.

At least once: a batch's offsets are committed only after Kafka has every record forwarded and
every dead letter of the batch; a crash in between forwards the batch again (same event ids:
the router drops the repeats). A key store that does not answer is handled as Kafka not
taking the batch: nothing is committed.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from opentelemetry.trace import SpanKind, Status, StatusCode

import schemas
from bus import telemetry
from bus.acls.matrix import gateway_group
from bus.crypto import Keyring, seal
from bus.keystore import KeyStoreError
from bus.partners import SOURCES, Partner, PartnerRegistry
from bus.topics import ORDERED_EVENTS
from connectors.settings import ConnectorSettings
from connectors.tracing import CHANNEL, REASON, accepted, producer_attributes, rejected, tracer

log = logging.getLogger("ungebus.gateway")
COMPONENT = "gateway"
Headers = list[tuple[str, bytes]]
dead_letters = telemetry.meter("ungebus.gateway").create_counter(
    "ungebus.deadletters", unit="{record}", description="records sent to the dead-letter topic"
)
# A refusal's error type as the connectors' rejection reason (their ``STATUS_REASONS``).
REJECTION_REASONS = {"TooLarge": "too_large", "KindNotAllowed": "forbidden",
                     "SourceNotAllowed": "forbidden"}  # fmt: skip


@dataclass(frozen=True)
class Forward:
    """A record that passed every check, and what operators may see of it."""

    event_id: str
    name: str
    source_kind: str


@dataclass(frozen=True)
class Refused:
    reason: str
    error_type: str
    event_id: str | None = None
    kind: str = "unknown"  # the record's, once it decoded


def inspect(
    partner: Partner, key: bytes | None, value: bytes | None, max_bytes: int
) -> Forward | Refused:
    """Whether ``partner`` may have published this record: no I/O, the reasons name fields,
    kinds and source ids (never personal data)."""
    if value is None:
        return Refused("the record has no value (a tombstone)", "Tombstone")
    if len(value) > max_bytes:
        return Refused(
            f"the record is {len(value)} bytes; a partner event may be at most {max_bytes}",
            "TooLarge",
        )
    try:
        name, _version, record = schemas.decode(value)
    except schemas.DecodeError as exc:
        return Refused(f"the record does not decode: {exc}", "DecodeError")
    envelope = record.get("envelope") if isinstance(record, Mapping) else None
    if name not in ORDERED_EVENTS or envelope is None:
        return Refused(f"a {name} record is not a partner event or consent", "WrongKind")
    event_id = str(envelope["event_id"])
    kinds = sorted(k for k in partner.kinds if schemas.PARTNER_KINDS[k] == name)
    if not kinds:
        refusal = f"partner {partner.name!r} may not send {name}"
        return Refused(refusal, "KindNotAllowed", event_id, name)
    source = envelope["source"]
    if not any(
        SOURCES[k][0] == source["kind"] and partner.may_claim(source["kind"], source["id"])
        for k in kinds
    ):
        return Refused(
            f"{source['kind']}:{source['id']} is not a source partner {partner.name!r} may "
            f"send {name} for",
            "SourceNotAllowed",
            event_id,
            name,
        )
    if key != str(envelope["subject"]["pseudonym"]).encode():
        return Refused(
            "the record key is not the subject pseudonym, so it would be decided out of order "
            "with the person's other events and consents",
            "WrongKey",
            event_id,
            name,
        )
    return Forward(event_id, name, str(source["kind"]))


def dead_letter(
    settings: ConnectorSettings, message: Message, refused: Refused, now: dt.datetime
) -> tuple[bytes, Headers]:
    """The refused record with its reason; copied when it fits in a dead letter, else named
    by its digest and position, where it stays (``schemas.dead_letters``)."""
    topic, partition, offset = message.topic() or "", message.partition() or 0, message.offset()
    record = {
        "reason": refused.reason,
        "error_type": refused.error_type,
        "component": COMPONENT,
        "event_id": refused.event_id,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset or 0,
        "original_key": message.key(),
        "original_value": message.value(),
        "original_headers": [{"key": k, "value": v} for k, v in _headers(message)],
        "failed_at": now,
    }
    headers = schemas.build_headers(
        ce_id=f"{topic}/{partition}/{offset}",
        ce_type=str(schemas.event_type_of("dead_letter")),
        ce_source=f"/ungebus/{COMPONENT}",
        ce_time=now,
        ce_subject="",
    )
    headers = [(k, v) for k, v in headers if k != "ce_subject"]
    headers += schemas.carried_headers(_headers(message))  # a retried record's count, carried on
    budget = settings.record_limits.value_budget(None, headers)
    return schemas.encode_dead_letter(record, max_size=budget), headers


def _headers(message: Message) -> Headers:
    raw = message.headers() or []
    items = raw.items() if isinstance(raw, dict) else raw
    return [(k, v if isinstance(v, bytes) else (v or "").encode()) for k, v in items]


class Gateway:
    def __init__(
        self,
        settings: ConnectorSettings,
        registry: PartnerRegistry,
        keyring: Keyring,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._settings = settings
        self._keyring = keyring
        topics = settings.topics
        self._partner_by_topic = {topics.partner_events(n): p for n, p in registry.by_name.items()}
        self._clock = clock
        self._consumer = Consumer(
            settings.member_config(
                gateway_group(settings.topic_prefix),
                COMPONENT,
                **{"enable.partition.eof": False},
            )
        )
        self._producer = Producer(settings.producer_config(**{"linger.ms": 5}))
        self.forwarded = 0
        self.refused = 0

    @property
    def topics(self) -> list[str]:
        return sorted(self._partner_by_topic)

    def run(self, stop: threading.Event, on_ready: Callable[[], None] = lambda: None) -> None:
        """Forward until ``stop`` is set; the consumer closes cleanly on the way out.

        Raises KafkaException on a fatal consumer error (another gateway took this one's
        place in the group: ``UNGEBUS_CONSUMER_INSTANCE``)."""
        self._consumer.subscribe(self.topics)
        on_ready()
        try:
            while not stop.is_set():
                batch = self._consumer.consume(num_messages=500, timeout=0.5)
                for message in batch:
                    error = message.error()  # fatal: reported on a message as _FATAL
                    if error is not None and (error.fatal() or error.code() == KafkaError._FATAL):
                        raise KafkaException(error)
                if batch:
                    self.forward(batch)
        finally:
            self._producer.flush(self._settings.ack_timeout_s)
            self._consumer.close()

    def forward(self, batch: Sequence[Message]) -> None:
        """Check and forward (or dead-letter) every record, wait for Kafka, then commit.

        Raises KafkaException when Kafka did not take every output: nothing is committed, the
        batch comes again on restart.
        """
        failures: list[str] = []
        positions: dict[tuple[str, int], int] = {}
        for message in batch:
            if message.error() is not None:
                continue
            topic, partition = message.topic() or "", message.partition() or 0
            positions[topic, partition] = (message.offset() or 0) + 1
            self._one(message, failures)
        left = self._producer.flush(self._settings.ack_timeout_s * 6)
        if left or failures:
            raise KafkaException(f"not forwarded: {left} unacknowledged; {sorted(set(failures))}")
        if positions:
            offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
            self._consumer.commit(offsets=offsets, asynchronous=False)

    def _one(self, message: Message, failures: list[str]) -> None:
        topic = message.topic() or ""
        partner = self._partner_by_topic[topic]
        outcome = inspect(partner, message.key(), message.value(), self._settings.max_body_bytes)

        def report(err: Any, _msg: Message) -> None:
            if err is not None:
                failures.append(err.str())

        counted = {telemetry.PARTNER: partner.name, CHANNEL: "kafka"}
        if isinstance(outcome, Forward):
            outcome = self._forward(message, partner, outcome, report)
        if isinstance(outcome, Forward):
            kind = {telemetry.EVENT_KIND: outcome.name, telemetry.SOURCE_KIND: outcome.source_kind}
            accepted.add(1, {**counted, **kind})
        else:
            self.refused += 1
            reason = REJECTION_REASONS.get(outcome.error_type, "invalid")
            rejected.add(1, {**counted, telemetry.EVENT_KIND: outcome.kind, REASON: reason})
            dead_letters.add(
                1, {"ungebus.component": COMPONENT, "ungebus.error_type": outcome.error_type}
            )
            value, headers = dead_letter(self._settings, message, outcome, self._clock())
            log.warning(
                "Refused a record from partner %s at %s/%s/%s: %s",
                partner.name, topic, message.partition(), message.offset(), outcome.error_type,
            )  # fmt: skip
            self._produce(self._settings.topics.deadletter, None, value, headers, report)

    def _forward(
        self,
        message: Message,
        partner: Partner,
        checked: Forward,
        report: Callable[[Any, Message], None],
    ) -> Forward | Refused:
        """Forward a checked record, sealed, in a PRODUCER span continuing the partner's trace;
        a record Kafka would refuse (too large with its headers) is refused instead.
        KafkaException when the key store could not give the person a key."""
        destination = self._settings.topics.inbound_events
        attributes = producer_attributes(
            destination, checked.event_id, checked.name, checked.source_kind, partner.name
        )
        with tracer.start_as_current_span(
            telemetry.span_name("send", destination),
            context=telemetry.extract(_headers(message)),
            kind=SpanKind.PRODUCER,
            attributes=attributes,
        ) as span:
            key, value = message.key(), message.value()
            forwarded = telemetry.inject(_headers(message))
            try:  # the key is the subject pseudonym (``inspect``)
                value = seal(self._keyring, (key or b"").decode("ascii", "replace"), value or b"")
            except KeyStoreError as exc:
                span.set_status(Status(StatusCode.ERROR, "no data key"))
                raise KafkaException(f"not forwarded: {exc}") from None
            except ValueError as exc:  # not a pseudonym the key store can name
                span.set_status(Status(StatusCode.ERROR, "refused"))
                refusal = f"its subject pseudonym cannot name a data key: {exc}"
                return Refused(refusal, "BadPseudonym", checked.event_id, checked.name)
            problem = self._settings.record_limits.too_large(destination, key, value, forwarded)
            if problem is None:
                try:
                    self._produce(destination, key, value, forwarded, report)
                    self.forwarded += 1
                    return checked
                except KafkaException as exc:  # refused by the producer: this record only
                    problem = f"Kafka refused to take it: {exc.args[0].str()}"
            span.set_status(Status(StatusCode.ERROR, "refused"))
        refusal = f"the record cannot be forwarded: {problem}"
        return Refused(refusal, "TooLarge", checked.event_id, checked.name)

    def _produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, Any]],
        report: Callable[[Any, Message], None],
    ) -> None:
        while True:
            try:
                self._producer.produce(
                    topic, key=key, value=value, headers=list(headers), on_delivery=report
                )
                return
            except BufferError:  # librdkafka's queue is full: let it drain
                self._producer.poll(0.05)
