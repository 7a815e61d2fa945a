"""Writing the router's outputs: a confluent-kafka producer, and wait until Kafka has them.

faust's own send path costs about 0.3 ms a record in Python; librdkafka batches in C. The
producer is idempotent with acks=all (``Settings.producer_config``). Records are produced in
groups (:class:`Deliveries`, one per commit window); :meth:`OutputWriter.delivered` returns
once Kafka answered for every record of a group, so the faust shell acks its input after
that — or stops the process if Kafka would not take them. Delivery reports are served on the
event loop's thread (``poll(0)``), so no other thread takes turns at the GIL for them.

Failures of one record are that record's, not the process's: librdkafka refusing a record in
``produce`` raises :class:`Refused` for it, and a delivery report saying the broker will not
take a record (too large, invalid: :data:`PERMANENT`) is kept as a :class:`Refusal` with the
consumed record it came from, for the window to try alone and then dead-letter (the broker
refuses a batch as a whole: every record batched with a refused one is reported refused).
Everything else (the broker away, timeouts, a fatal producer error) fails the whole group,
as before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from bus.settings import Settings
from streams.routing.outputs import InMessage, Output

_UNASSIGNED = -1  # librdkafka's RD_KAFKA_PARTITION_UA: the partitioner chooses
_POLL_EVERY_S = 0.002
# Refusals about the record itself: producing it again gives the same answer.
# Kafka says the topic is not there (deleted under a running component; topics are never
# created automatically on the bus's brokers). A deleted topic's partition count drops to 0:
# its queued records fail as an unknown partition.
GONE = frozenset(
    {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError._UNKNOWN_PARTITION}
)

PERMANENT = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,  # over message.max.bytes (librdkafka or the broker)
        KafkaError.RECORD_LIST_TOO_LARGE,  # its batch over the topic's max.message.bytes
        KafkaError.INVALID_RECORD,  # the broker's record validation
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.INVALID_TIMESTAMP,
    }
)

Report = Callable[[KafkaError | None, Message], None]


class DeliveryFailed(RuntimeError):
    """Kafka did not acknowledge every output in time; ``gone`` names the topics it said do
    not exist (deleted under the running router: waiting or retrying will not bring them)."""

    def __init__(self, message: str, gone: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.gone = gone


class Refused(RuntimeError):
    """librdkafka would not take a record (``produce`` raised): it was not produced."""

    def __init__(self, output: Output, error: KafkaError, produced_before: int) -> None:
        super().__init__(f"Kafka refused a record for {output.topic}: {error.str()}")
        self.output = output
        self.error = error
        self.produced_before = produced_before  # of the same call's outputs, already produced


@dataclass(frozen=True)
class Refusal:
    """A record the broker refused for good, and the consumed record that made it (if any)."""

    source: InMessage | None
    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    error: str

    def output(self) -> Output:
        """The refused record, to produce again (to the partition it was refused on)."""
        return Output(self.topic, self.key, self.value, self.headers, self.partition)


class Deliveries:
    """Records handed to librdkafka together; done when Kafka acknowledged or refused each."""

    def __init__(self) -> None:
        self.produced = 0
        self.acknowledged = 0
        self.failures: list[KafkaError] = []  # the group fails: stop before acking
        self.gone: set[str] = set()  # topics of failures Kafka says do not exist
        self.refused: list[Refusal] = []  # per record: dead-letter its source

    @property
    def done(self) -> bool:
        return self.acknowledged + len(self.failures) + len(self.refused) >= self.produced

    def report(self, error: KafkaError | None, message: Message) -> None:
        """The delivery callback of outputs no consumed record made (a timer's, a table's)."""
        self._settle(None, error, message)

    def reporter(self, source: InMessage) -> Report:
        """The delivery callback for the outputs of ``source``."""
        return lambda error, message: self._settle(source, error, message)

    def _settle(self, source: InMessage | None, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.acknowledged += 1
        elif error.code() in PERMANENT and not error.fatal():
            self.refused.append(_refusal(source, message, error))
        else:
            self.failures.append(error)
            if error.code() in GONE:
                self.gone.add(message.topic() or "?")


def _refusal(source: InMessage | None, message: Message, error: KafkaError) -> Refusal:
    raw: Any = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    headers = [(str(name), bytes(value or b"")) for name, value in pairs]
    key, value = message.key(), message.value()
    return Refusal(
        source,
        message.topic() or "",
        message.partition() or 0,
        key.encode() if isinstance(key, str) else key,
        value.encode() if isinstance(value, str) else value,
        headers,
        error.str(),
    )


class OutputWriter:
    def __init__(self, settings: Settings, timeout_s: float = 60.0) -> None:
        self._producer = Producer(
            settings.producer_config(
                **{"linger.ms": 2, "delivery.timeout.ms": int(timeout_s * 1000)}
            )
        )
        self._timeout_s = timeout_s
        self._open = Deliveries()

    def produce(self, outputs: Sequence[Output], source: InMessage | None = None) -> None:
        """Hand records to librdkafka (non-blocking unless its queue is full), in the open
        group. :class:`Refused` when librdkafka will not take one (the ones before it are
        produced; check sizes first: ``bus.limits``)."""
        deliveries = self._open
        report = deliveries.report if source is None else deliveries.reporter(source)
        for index, output in enumerate(outputs):
            while True:
                try:
                    self._producer.produce(
                        output.topic,
                        key=output.key,
                        value=output.value,
                        headers=list(output.headers),
                        on_delivery=report,
                        partition=_UNASSIGNED if output.partition is None else output.partition,
                    )
                    break
                except BufferError:  # librdkafka's queue is full: let it drain a little
                    self._producer.poll(0.01)
                except KafkaException as exc:
                    error: KafkaError = exc.args[0]
                    if error.fatal():
                        raise
                    raise Refused(output, error, index) from exc
            deliveries.produced += 1

    def cut(self) -> Deliveries:
        """The open group, closed: what is produced from now on goes to a new one."""
        closed, self._open = self._open, Deliveries()
        return closed

    @contextmanager
    def into(self, deliveries: Deliveries) -> Iterator[None]:
        """Produce into ``deliveries`` inside the block (which must not await)."""
        kept, self._open = self._open, deliveries
        try:
            yield
        finally:
            self._open = kept

    async def delivered(self, deliveries: Deliveries) -> None:
        """Wait until Kafka answered for every record of ``deliveries``; DeliveryFailed if a
        record failed other than by a permanent refusal (``deliveries.refused``, for the
        caller) or the group took longer than the delivery timeout."""
        deadline = time.monotonic() + self._timeout_s + 5  # librdkafka reports by its timeout
        self._producer.poll(0)
        while not deliveries.done and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_EVERY_S)
            self._producer.poll(0)
        if deliveries.failures or not deliveries.done:
            reasons = ", ".join(sorted({e.str() for e in deliveries.failures})) or "timed out"
            missing = deliveries.produced - deliveries.acknowledged - len(deliveries.refused)
            gone = (
                f"; no such topic: {', '.join(sorted(deliveries.gone))}" if deliveries.gone else ""
            )
            raise DeliveryFailed(
                f"{missing} of {deliveries.produced} outputs not acknowledged: {reasons}{gone}",
                frozenset(deliveries.gone),
            )
