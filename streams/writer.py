"""Writing the router's outputs: a confluent-kafka producer, and wait until Kafka has them all.

faust's own send path costs about 0.3 ms a record in Python; librdkafka batches in C. The
producer is idempotent with acks=all (``Settings.producer_config``); :meth:`flushed` returns
only once every record produced so far is acknowledged, so the faust shell acks its input after
that — or stops the process if Kafka would not take them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from confluent_kafka import KafkaError, Message, Producer

from bus.settings import Settings
from streams.outputs import Output

_UNASSIGNED = -1  # librdkafka's RD_KAFKA_PARTITION_UA: the partitioner chooses


class DeliveryFailed(RuntimeError):
    """Kafka did not acknowledge every output in time."""


class OutputWriter:
    def __init__(self, settings: Settings, timeout_s: float = 60.0) -> None:
        self._producer = Producer(
            settings.producer_config(
                **{
                    "linger.ms": 2,
                    "delivery.timeout.ms": int(timeout_s * 1000),
                    # Only failures call back into Python: a callback per record made the
                    # flushing thread and the event loop take turns at the GIL thousands of
                    # times a second. ``flush`` still waits until every record is acknowledged.
                    "delivery.report.only.error": True,
                }
            )
        )
        self._timeout_s = timeout_s
        self._failures: list[KafkaError] = []
        self._in_flight = 0

    def produce(self, outputs: Sequence[Output]) -> None:
        """Hand records to librdkafka (non-blocking unless its queue is full)."""
        for output in outputs:
            while True:
                try:
                    self._producer.produce(
                        output.topic,
                        key=output.key,
                        value=output.value,
                        headers=list(output.headers),
                        on_delivery=self._on_delivery,
                        partition=_UNASSIGNED if output.partition is None else output.partition,
                    )
                    break
                except BufferError:  # librdkafka's queue is full: let it drain a little
                    self._producer.poll(0.01)
            self._in_flight += 1

    async def flushed(self) -> None:
        """Wait until Kafka acknowledged everything produced; DeliveryFailed if it did not."""
        if not self._in_flight:
            return
        loop = asyncio.get_running_loop()
        remaining = await loop.run_in_executor(None, self._producer.flush, self._timeout_s)
        failures, self._failures = self._failures, []
        in_flight, self._in_flight = self._in_flight, 0
        if remaining or failures:
            reasons = ", ".join(sorted({e.str() for e in failures})) or "timed out"
            raise DeliveryFailed(
                f"{remaining + len(failures)} of {in_flight} outputs not acknowledged: {reasons}"
            )

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._failures.append(error)
