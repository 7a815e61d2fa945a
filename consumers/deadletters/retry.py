"""Retrying a dead letter: its original's bytes again on the topic they came from.

The original goes back as it was (key, value, headers: the same event id), to its source
topic and partition, with one header more: ``ungebus-retry-count``, one more than the letter
says. The idempotent producer (acks=all) writes it once however often librdkafka resends.
Retrying is safe to repeat because what reads it again treats a repeat as done: the router
remembers every event id it routed and routes a repeat as a duplicate (no task); task ids are
deterministic; the gateway forwards, and the router decides. A record that fails again is
dead-lettered again, the count carried onto the new letter. Nothing is deleted anywhere.

A letter that copied its original can be retried, except one whose record the router or
tracker applied before Kafka refused one of its outputs (the reason says its state changes
stand): the router already remembers that event id as routed, so a retry would be decided a
duplicate and route nothing, and that is said instead. One kept by reference (the original
too large to copy) can be retried only while the original is still at its source position:
it is read from there and must have the SHA-256 the letter names. The deciding is pure
(:func:`plan`, :func:`from_source`); :class:`Republisher` does the writing.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

import schemas
from bus.records import NotDelivered, Outgoing, Received
from bus.settings import Settings
from consumers.deadletters.letters import NO_POSITION, Header, Letter


@dataclass(frozen=True)
class Republish:
    """What a retry writes: the original, to its source, with its new retry count."""

    letter: Letter
    topic: str
    partition: int | None  # None: by key (a record that was never consumed)
    key: bytes | None
    value: bytes
    headers: tuple[Header, ...]
    retry_count: int


@dataclass(frozen=True)
class NotRetried:
    letter: Letter
    why: str


@dataclass(frozen=True)
class FromSource:
    """Kept by reference: the original must be read at its source position first."""

    letter: Letter


# What the router's and tracker's commit window adds to the reason when the broker refused one
# output of a record for good after the record was handled (``streams.runtime.window``): its
# state changes stand, so the router already holds the event id as routed.
STATE_STANDS = "its other outputs and state changes stand"


def plan(letter: Letter) -> Republish | NotRetried | FromSource:
    """How ``letter`` can be retried, or why it cannot."""
    if STATE_STANDS in letter.reason:
        return NotRetried(
            letter,
            f"the {letter.component} already applied this record (Kafka refused one of its "
            "outputs after the rest were written and its state kept): re-published, it would "
            "be a duplicate and change nothing. Re-send the event under a new event id",
        )
    if letter.tombstone:
        return NotRetried(letter, "its record had no value (a tombstone): nothing to re-publish")
    if letter.value is not None:
        return republish(letter, letter.key, letter.value, letter.headers)
    if letter.source_partition == NO_POSITION:
        return NotRetried(
            letter,
            "its record was too large to copy into the letter and was never on Kafka (the "
            f"{letter.component} made it and Kafka refused it): no copy of it is kept anywhere",
        )
    return FromSource(letter)


def from_source(letter: Letter, found: Received | str) -> Republish | NotRetried:
    """A letter kept by reference, with what its source position holds (or why nothing)."""
    cannot = (
        f"its record was too large to copy into the letter and cannot be read back from "
        f"{letter.source}"
    )
    if isinstance(found, str):
        return NotRetried(letter, f"{cannot}: {found}")
    digest = None if found.value is None else hashlib.sha256(found.value).hexdigest()
    if found.value is None or digest != letter.value_sha256:
        return NotRetried(
            letter, f"{cannot}: the record there is not the original (its SHA-256 differs)"
        )
    return republish(letter, found.key, found.value, tuple(found.headers))


def republish(
    letter: Letter, key: bytes | None, value: bytes, headers: tuple[Header, ...]
) -> Republish:
    count = max(letter.retry_count, schemas.retry_count(headers)) + 1
    kept = tuple((n, v) for n, v in headers if n != schemas.RETRY_COUNT_HEADER)
    return Republish(
        letter=letter,
        topic=letter.source_topic,
        partition=None if letter.source_partition < 0 else letter.source_partition,
        key=key,
        value=value,
        headers=(*kept, (schemas.RETRY_COUNT_HEADER, str(count).encode())),
        retry_count=count,
    )


class Republisher:
    """An idempotent, acks=all producer that returns once Kafka has each record."""

    def __init__(self, settings: Settings, timeout_s: float = 60.0) -> None:
        self._producer = Producer(settings.producer_config(**{"linger.ms": 0}))
        self._timeout_s = timeout_s

    def republish(self, retry: Republish) -> tuple[int, int]:
        """(partition, offset) of the re-published original; NotDelivered if Kafka refused."""
        return self._send(retry.topic, retry.partition, retry.key, retry.value, list(retry.headers))

    def record(self, action: Outgoing) -> tuple[int, int]:
        return self._send(action.topic, None, action.key, action.value, list(action.headers))

    def _send(
        self,
        topic: str,
        partition: int | None,
        key: bytes | None,
        value: bytes,
        headers: list[Any],
    ) -> tuple[int, int]:
        done: Future[tuple[int, int]] = Future()

        def settle(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                done.set_result((msg.partition() or 0, msg.offset() or 0))
            else:
                done.set_exception(NotDelivered(f"Kafka refused it: {err.str()}"))

        where: dict[str, Any] = {} if partition is None else {"partition": partition}
        try:
            self._producer.produce(
                topic, key=key, value=value, headers=headers, on_delivery=settle, **where
            )
        except KafkaException as exc:
            raise NotDelivered(f"Kafka refused it: {exc.args[0].str()}") from None
        except BufferError as exc:
            raise NotDelivered(f"the producer's queue is full: {exc}") from None
        deadline = time.monotonic() + self._timeout_s
        while not done.done():
            if time.monotonic() > deadline:
                raise NotDelivered(f"Kafka did not acknowledge it within {self._timeout_s:g} s")
            self._producer.poll(0.05)
        return done.result()

    def close(self) -> None:
        self._producer.flush(self._timeout_s)
