"""The key store: every person's data keys on the compacted ``keys`` topic, wrapped with the
master key, held in memory by each component that seals or unseals personal data.

Why a topic and not the inbox's database: every component that needs keys (the connectors
that seal at the edge, the router, each municipality's inbox) already talks to Kafka under its
own principal, and Kafka's ACLs already say which principal may read or write which topic; a
database would be one more server every component must reach, with its own accounts. The
topic holds nothing readable on its own: each value is the data key encrypted with the master
key (``UNGEBUS_MASTER_KEY``), which lives in the components' settings, never on Kafka. Erasure
writes a tombstone per key; every keyring drops the key as soon as it reads the tombstone, and
the broker's log cleaner removes the wrapped key from its segments (``bus.topics``,
``KEYS_TOPIC_CONFIG``).

A :class:`KafkaKeyring` reads the topic to its end when it starts, then tails it from a thread,
so a key another process created is found (:meth:`KafkaKeyring.key` waits until the tail has
reached the end Kafka had when asked) and an erased key is forgotten within a poll. Keys are
created only after the topic acknowledged them (acks=all), so nothing is sealed under a key
that could be lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from bus.crypto import DataKey, SealError, unwrap_key, wrap_key

if TYPE_CHECKING:
    from bus.settings import Settings

log = logging.getLogger("ungebus.keys")
PARTITION = 0
_TRANSIENT = (
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
)


class KeyStoreError(RuntimeError):
    """The key store could not be read or written in time; nothing was sealed."""


class KafkaKeyring:
    """Data keys of the ``keys`` topic in memory, kept current by a tailing thread."""

    def __init__(
        self,
        config: Mapping[str, Any],
        producer_config: Mapping[str, Any],
        topic: str,
        master_key: bytes,
        *,
        group_id: str = "ungebus-keystore",
        wait_s: float = 10.0,
    ) -> None:
        self.topic = topic
        self.wait_s = wait_s
        self._master_key = master_key
        # A group id only because librdkafka wants one: never joined, nothing committed.
        self._config = {**config, "group.id": group_id, "enable.auto.commit": False}
        self._producer = Producer(dict(producer_config))
        self._probe: Consumer | None = None  # asks Kafka for the topic's end
        self._probe_lock = threading.Lock()
        self._keys: dict[str, dict[bytes, DataKey]] = {}
        self._position = 0  # the next offset the tail will apply
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> KafkaKeyring:
        """Read the topic to its end, then keep tailing it; ``KeyStoreError`` if it cannot."""
        end = self._end_offset()
        self._thread = threading.Thread(target=self._tail, name="keystore-tail", daemon=True)
        self._thread.start()
        self._await_position(end, f"the key store {self.topic} read to its end")
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._producer.flush(self.wait_s)
        self._forget_probe()

    def __enter__(self) -> KafkaKeyring:
        return self  # started by :meth:`start` (``keyring_for`` returns it started)

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the keyring ----------------------------------------------------------------------------
    def sealing_key(self, pseudonym: str) -> DataKey:
        with self._changed:
            known = self._keys.get(pseudonym)
            if known:
                return next(reversed(known.values()))
        key = DataKey.new(pseudonym)
        self._write(key.name, wrap_key(self._master_key, key))
        with self._changed:
            self._keys.setdefault(pseudonym, {})[key.key_id] = key
        return key

    def sealing_keys(self, pseudonyms: Iterable[str]) -> dict[str, DataKey]:
        """:meth:`sealing_key` for many people at once: the new keys stored with one round
        trip (a file of many people, a benchmark's preload)."""
        wanted, found = set(pseudonyms), {}
        with self._changed:
            for pseudonym in wanted:
                known = self._keys.get(pseudonym)
                if known:
                    found[pseudonym] = next(reversed(known.values()))
        new = {p: DataKey.new(p) for p in wanted - set(found)}
        self._write_all([(key.name, wrap_key(self._master_key, key)) for key in new.values()])
        with self._changed:
            for pseudonym, key in new.items():
                self._keys.setdefault(pseudonym, {})[key.key_id] = key
        return {**found, **new}

    def key(self, pseudonym: str, key_id: bytes) -> DataKey | None:
        found = self._known(pseudonym, key_id)
        if found is not None:
            return found
        # Created by another process after our last poll? Wait for the tail to reach the end.
        self._await_position(self._end_offset(), f"the key store {self.topic} read to its end")
        return self._known(pseudonym, key_id)

    def keys_of(self, pseudonym: str) -> list[DataKey]:
        """Every key of ``pseudonym`` known once the tail has reached the current end."""
        self._await_position(self._end_offset(), f"the key store {self.topic} read to its end")
        with self._changed:
            return list(self._keys.get(pseudonym, {}).values())

    def erase(self, pseudonym: str) -> int:
        """Destroy every data key of ``pseudonym`` (a tombstone each, acknowledged by Kafka);
        how many there were. Their sealed data is unreadable from then on, everywhere."""
        keys = self.keys_of(pseudonym)
        for key in keys:
            self._write(key.name, None)
        with self._changed:
            self._keys.pop(pseudonym, None)
        return len(keys)

    # -- Kafka ----------------------------------------------------------------------------------
    def _known(self, pseudonym: str, key_id: bytes) -> DataKey | None:
        with self._changed:
            return self._keys.get(pseudonym, {}).get(key_id)

    def _write(self, name: str, value: bytes | None) -> None:
        self._write_all([(name, value)])

    def _write_all(self, records: list[tuple[str, bytes | None]]) -> None:
        """Each (key name, wrapped key or None) on the topic, acknowledged, with one flush."""
        outcome: dict[str, KafkaError | None] = {}

        def noting(name: str) -> Callable[[KafkaError | None, Any], None]:
            return lambda error, _message: outcome.__setitem__(name, error)

        for name, value in records:
            self._producer.produce(
                self.topic, key=name.encode(), value=value, partition=PARTITION,
                on_delivery=noting(name),
            )  # fmt: skip
        self._producer.flush(self.wait_s)
        for name, _value in records:
            if name not in outcome or outcome[name] is not None:
                error = outcome.get(name)
                reason = error.str() if error is not None else "no answer in time"
                raise KeyStoreError(f"the key store {self.topic} did not take key {name}: {reason}")

    def _end_offset(self) -> int:
        """The topic's end offset now; a transient refusal (a topic just created, its leader
        moving) is asked again until ``wait_s`` has passed."""
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                return self._ask_end_offset(max(0.5, deadline - time.monotonic()))
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                transient = isinstance(error, KafkaError) and (
                    error.retriable() or error.code() in _TRANSIENT
                )
                if not transient or time.monotonic() > deadline:
                    raise KeyStoreError(
                        f"the key store {self.topic} did not answer: {exc}"
                    ) from exc
                self._forget_probe()  # a new one asks for the partition's leader afresh
            time.sleep(0.2)

    def _forget_probe(self) -> None:
        with self._probe_lock:
            if self._probe is not None:
                self._probe.close()
                self._probe = None

    def _ask_end_offset(self, timeout_s: float) -> int:
        with self._probe_lock:
            if self._probe is None:
                self._probe = Consumer(self._config)
            ends = self._probe.get_watermark_offsets(
                TopicPartition(self.topic, PARTITION), timeout=timeout_s
            )
        if ends is None:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "no answer in time"))
        return int(ends[1])

    def _await_position(self, offset: int, what: str) -> None:
        deadline = time.monotonic() + self.wait_s
        with self._changed:
            while self._position < offset and self._failure is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise KeyStoreError(f"{what}: not within {self.wait_s:.0f} s")
                self._changed.wait(left)
            if self._failure is not None:
                raise KeyStoreError(f"{what}: {self._failure}") from self._failure

    def _tail(self) -> None:
        consumer = Consumer(self._config)
        try:
            consumer.assign([TopicPartition(self.topic, PARTITION, OFFSET_BEGINNING)])
            while not self._stop.is_set():
                # poll returns as soon as one key arrives (consume would wait out its whole
                # timeout for a batch, and a router waiting for a key just made would wait
                # with it); what else is there already comes with it.
                first = consumer.poll(0.5)
                messages = [] if first is None else [first, *consumer.consume(499, timeout=0)]
                with self._changed:
                    for message in messages:
                        if message.error() is None:
                            self._apply(message.key(), message.value())
                            self._position = (message.offset() or 0) + 1
                    self._changed.notify_all()
        except BaseException as exc:  # reported to every waiter; the process decides
            with self._changed:
                self._failure = exc
                self._changed.notify_all()
            log.exception("The key store's tail stopped")
        finally:
            consumer.close()

    def _apply(self, raw_name: bytes | None, value: bytes | None) -> None:
        try:
            pseudonym, key_hex = (raw_name or b"").decode("ascii").rsplit(":", 1)
            key_id = bytes.fromhex(key_hex)
        except ValueError:
            log.warning("The key store holds a record with an unreadable name; passed over")
            return
        if value is None:
            self._keys.get(pseudonym, {}).pop(key_id, None)
            return
        try:
            key = unwrap_key(self._master_key, pseudonym, key_id, value)
        except SealError as exc:
            log.warning("%s; passed over (another deployment's master key?)", exc)
            return
        self._keys.setdefault(pseudonym, {})[key_id] = key


def keyring_for(settings: Settings, *, wait_s: float = 10.0) -> KafkaKeyring:
    """This component's keyring on its deployment's key store (started: read to its end)."""
    from bus.acls.matrix import keystore_group

    return KafkaKeyring(
        settings.kafka_config(),
        settings.producer_config(),
        settings.topics.keys,
        settings.master_key_bytes(),
        group_id=keystore_group(settings.topic_prefix),
        wait_s=wait_s,
    ).start()
