"""The key store on the real broker (``bus.keystore``): a key one process created is found by
another, an erased key is gone from every keyring, and a key wrapped under another master key
is passed over."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from bus.crypto import DataKey, Erased, seal, unseal
from bus.keystore import KafkaKeyring
from bus.topics import KEYS_TOPIC_CONFIG, TopicSpec, ensure_topics
from bus.waiting import wait_until
from tests.support.kafka_login import client_config

pytestmark = pytest.mark.integration

ANNA = "a" * 64
BO = "b" * 64


@pytest.fixture
def keyring(kafka_bootstrap: str, unique: Callable[[str], str]) -> Callable[..., KafkaKeyring]:
    config = client_config(kafka_bootstrap)
    topic = unique("keys")
    ensure_topics(config, [TopicSpec(topic, 1, config=KEYS_TOPIC_CONFIG)])
    master = os.urandom(32)
    made: list[KafkaKeyring] = []

    def make(master_key: bytes = master) -> KafkaKeyring:
        ring = KafkaKeyring(
            config, {**config, "enable.idempotence": True, "acks": "all"}, topic, master_key
        ).start()
        made.append(ring)
        return ring

    yield make
    for ring in made:
        ring.close()


def test_a_key_made_in_one_process_opens_in_another_until_erased(
    keyring: Callable[..., KafkaKeyring],
) -> None:
    connector, router = keyring(), keyring()
    anna, bo = seal(connector, ANNA, b"anna's event"), seal(connector, BO, b"bo's event")

    assert unseal(router, anna) == b"anna's event"  # created after the router's start
    assert connector.sealing_key(ANNA) == router.sealing_key(ANNA)  # one key per person
    late = keyring()  # started after: reads the keys from the topic
    assert unseal(late, bo) == b"bo's event"

    assert keyring().erase(ANNA) == 1

    for ring in (connector, router, late):
        wait_until(lambda r=ring: r.keys_of(ANNA) == [], 10, "the tombstone read")  # type: ignore[misc]
        with pytest.raises(Erased):
            unseal(ring, anna)
        assert unseal(ring, bo) == b"bo's event"
    with pytest.raises(Erased):
        unseal(keyring(), anna)


def test_a_key_wrapped_under_another_master_key_is_passed_over(
    keyring: Callable[..., KafkaKeyring],
) -> None:
    ours = keyring()
    sealed = seal(ours, ANNA, b"anna")
    theirs = keyring(os.urandom(32))

    assert theirs.keys_of(ANNA) == []
    with pytest.raises(Erased):
        unseal(theirs, sealed)
    assert isinstance(theirs.sealing_key(BO), DataKey)  # and it still works for its own


def test_keys_for_many_people_are_made_at_once_and_known_keys_kept(
    keyring: Callable[..., KafkaKeyring],
) -> None:
    connector = keyring()
    anna_before = connector.sealing_key(ANNA)
    people = [ANNA, BO, *(f"{n:064x}" for n in range(50))]

    keys = connector.sealing_keys(iter(people))  # any iterable, read once

    assert set(keys) == set(people)
    assert keys[ANNA] == anna_before  # a person's existing key, not a second one
    other = keyring()  # started after: every new key is on the topic
    assert all(other.key(p, keys[p].key_id) == keys[p] for p in people)
