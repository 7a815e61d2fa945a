"""Writing the router's outputs: a confluent-kafka producer, and wait until Kafka has them all.

faust's own send path costs about 0.3 ms a record in Python; librdkafka batches in C. The
producer is idempotent with acks=all (``Settings.producer_config``), and :meth:`write`
returns only once every record of the batch is acknowledged, so the faust shell can ack the
batch's input afterwards — or stop the process if Kafka would not take them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from confluent_kafka import KafkaError, Message, Producer

from bus.settings import Settings
from streams.outputs import Output


class DeliveryFailed(RuntimeError):
    """Kafka did not acknowledge every output of a batch in time."""


class OutputWriter:
    def __init__(self, settings: Settings, timeout_s: float = 60.0) -> None:
        self._producer = Producer(
            settings.producer_config(
                **{"linger.ms": 2, "delivery.timeout.ms": int(timeout_s * 1000)}
            )
        )
        self._timeout_s = timeout_s

    async def write(self, outputs: Sequence[Output]) -> None:
        if not outputs:
            return
        failures: list[KafkaError] = []

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                failures.append(error)

        for output in outputs:
            while True:
                try:
                    self._producer.produce(
                        output.topic,
                        key=output.key,
                        value=output.value,
                        headers=list(output.headers),
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:  # librdkafka's queue is full: let it drain a little
                    self._producer.poll(0.01)
        loop = asyncio.get_running_loop()
        remaining = await loop.run_in_executor(None, self._producer.flush, self._timeout_s)
        if remaining or failures:
            reasons = ", ".join(sorted({e.str() for e in failures})) or "timed out"
            raise DeliveryFailed(
                f"{remaining} of {len(outputs)} outputs not acknowledged: {reasons}"
            )

    def close(self) -> None:
        self._producer.flush(self._timeout_s)
