"""The municipality's acknowledgement topic as the inbox reads it back: where it ends now, and
whether a take-over landed after a given point (``consumers.inbox.pending``).

Read with assigned partitions and explicit offsets, never committing: the inbox's own group id
only because librdkafka wants one (it never joins the group nor touches its offsets). The
inbox's principal may READ its own ``task-acks.<kk>``.
"""

from __future__ import annotations

from contextlib import closing

from confluent_kafka import Consumer, KafkaError

from bus.records import NotReadToEnd, end_offsets, raise_if_fatal, read_to_ends, received
from consumers.inbox.records import COMPONENT
from consumers.inbox.settings import InboxSettings


class AcksLogUnavailable(RuntimeError):
    """The acknowledgement topic could not be read within the time given."""


def taken_over_id(task_id: str) -> bytes:
    """The ``ce_id`` header of a task's take-over (``consumers.inbox.records.acknowledgement``)."""
    return f"{task_id}/taken-over".encode()


class AcksLog:
    def __init__(self, settings: InboxSettings, timeout_s: float) -> None:
        self._topic = settings.acks_topic
        self._timeout_s = timeout_s
        self._config = settings.kafka_config(
            **{"group.id": settings.group_id, "enable.auto.commit": False}
        )

    def ends(self) -> dict[int, int]:
        """Each partition's end offset (the next record's), as Kafka has it now."""
        consumer = Consumer(self._config)
        try:
            return self._ends(consumer)
        finally:
            consumer.close()

    def _ends(self, consumer: Consumer) -> dict[int, int]:
        try:
            return end_offsets(consumer, self._topic, self._timeout_s)
        except Exception as exc:  # a KafkaException, or None for a timeout
            raise AcksLogUnavailable(f"{self._topic}: {exc}") from exc

    def landed(self, task_id: str, since: dict[int, int]) -> bool:
        """Whether the task's take-over is on the topic at or after ``since``."""
        wanted = taken_over_id(task_id)
        consumer = Consumer(self._config)
        try:
            until = self._ends(consumer)
            left = {p: end for p, end in until.items() if end > since.get(p, 0)}
            starts = {p: since.get(p, 0) for p in left}  # a partition added since: all of it
            records = read_to_ends(
                consumer, self._topic, starts, left, _passed_over, deadline_s=self._timeout_s
            )
            with closing(records):  # unassigned before the consumer closes
                return any(("ce_id", wanted) in received(m).headers for m in records)
        except NotReadToEnd as exc:
            raise AcksLogUnavailable(str(exc)) from exc
        finally:
            consumer.close()


def _passed_over(error: KafkaError, _partition: int | None) -> None:
    """As ``bus.records.poll``: a fatal error raises, any other is logged."""
    raise_if_fatal(error, COMPONENT)
