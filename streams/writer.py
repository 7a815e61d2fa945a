"""Writing the router's outputs: a confluent-kafka producer, and wait until Kafka has them.

faust's own send path costs about 0.3 ms a record in Python; librdkafka batches in C. The
producer is idempotent with acks=all (``Settings.producer_config``). Records are produced in
groups (:class:`Deliveries`, one per commit window); :meth:`OutputWriter.delivered` returns
once Kafka acknowledged every record of a group, so the faust shell acks its input after
that — or stops the process if Kafka would not take them. Delivery reports are served on the
event loop's thread (``poll(0)``), so no other thread takes turns at the GIL for them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from confluent_kafka import KafkaError, Message, Producer

from bus.settings import Settings
from streams.outputs import Output

_UNASSIGNED = -1  # librdkafka's RD_KAFKA_PARTITION_UA: the partitioner chooses
_POLL_EVERY_S = 0.002


class DeliveryFailed(RuntimeError):
    """Kafka did not acknowledge every output in time."""


class Deliveries:
    """Records handed to librdkafka together; done when Kafka acknowledged or refused each."""

    def __init__(self) -> None:
        self.produced = 0
        self.acknowledged = 0
        self.failures: list[KafkaError] = []

    @property
    def done(self) -> bool:
        return self.acknowledged + len(self.failures) >= self.produced

    def report(self, error: KafkaError | None, _message: Message) -> None:
        if error is None:
            self.acknowledged += 1
        else:
            self.failures.append(error)


class OutputWriter:
    def __init__(self, settings: Settings, timeout_s: float = 60.0) -> None:
        self._producer = Producer(
            settings.producer_config(
                **{"linger.ms": 2, "delivery.timeout.ms": int(timeout_s * 1000)}
            )
        )
        self._timeout_s = timeout_s
        self._open = Deliveries()

    def produce(self, outputs: Sequence[Output]) -> None:
        """Hand records to librdkafka (non-blocking unless its queue is full), in the open
        group."""
        deliveries = self._open
        for output in outputs:
            while True:
                try:
                    self._producer.produce(
                        output.topic,
                        key=output.key,
                        value=output.value,
                        headers=list(output.headers),
                        on_delivery=deliveries.report,
                        partition=_UNASSIGNED if output.partition is None else output.partition,
                    )
                    break
                except BufferError:  # librdkafka's queue is full: let it drain a little
                    self._producer.poll(0.01)
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
        """Wait until Kafka acknowledged every record of ``deliveries``; DeliveryFailed if
        it refused one or took longer than the delivery timeout."""
        deadline = time.monotonic() + self._timeout_s + 5  # librdkafka reports by its timeout
        self._producer.poll(0)
        while not deliveries.done and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_EVERY_S)
            self._producer.poll(0)
        if deliveries.failures or not deliveries.done:
            reasons = ", ".join(sorted({e.str() for e in deliveries.failures})) or "timed out"
            missing = deliveries.produced - deliveries.acknowledged
            raise DeliveryFailed(
                f"{missing} of {deliveries.produced} outputs not acknowledged: {reasons}"
            )
