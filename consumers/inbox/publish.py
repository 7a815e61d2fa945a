"""Publishing that waits for Kafka's acknowledgement: nothing counts as sent before that."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from consumers.inbox.records import Outgoing


class NotDelivered(RuntimeError):
    """Kafka did not acknowledge a record in time, or refused it."""


class Publisher:
    """An idempotent (acks=all) producer; ``publish`` returns once every record is acknowledged.

    Thread-safe: the web threads and the feed may publish at the same time.
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
