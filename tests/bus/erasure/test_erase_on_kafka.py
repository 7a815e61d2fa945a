"""``ungebus erase`` and ``ungebus erase-verify`` on the real broker: one person's data keys
destroyed and the erasure recorded, the other person's records still open; nothing personal
in plaintext on the broker's disk before or after."""

from __future__ import annotations

import random
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer

import schemas
from bus.crypto import seal
from bus.keystore import keyring_for
from bus.records import end_offsets, read_to_ends
from bus.settings import Settings
from bus.waiting import wait_until
from deploy.local.broker import LocalKafka
from schemas.cpr import pseudonym
from tests.support.harness import fresh_bus, settings_env, ungebus

pytestmark = pytest.mark.integration


def _person() -> tuple[str, str]:
    """A synthetic CPR number and name no other test writes."""
    rng = random.Random(uuid.uuid4().int)
    born = f"{rng.randint(1, 28):02d}{rng.randint(1, 12):02d}0{rng.randint(0, 9)}"
    cpr = f"{born}{rng.randint(0, 9999):04d}"
    return cpr, f"Testa {uuid.uuid4().hex[:10]}"


def _publish_sealed(settings: Settings, people: list[tuple[str, str]]) -> dict[str, str]:
    """One sealed record per person on the inbound topic, as a connector writes it; cpr ->
    pseudonym."""
    keyring = keyring_for(settings)
    producer = Producer(settings.producer_config())
    named = {}
    try:
        for cpr, name in people:
            who = pseudonym(cpr, settings.pseudonym_key())
            named[cpr] = who
            value = seal(keyring, who, f"cpr={cpr} name={name}".encode())
            producer.produce(settings.topics.inbound_events, key=who.encode(), value=value)
        assert producer.flush(30) == 0
    finally:
        keyring.close()
    return named


def test_erase_destroys_one_persons_keys_and_records_why_while_the_other_still_opens(
    kafka_bootstrap: str, local_broker: LocalKafka | None, tmp_path: Path
) -> None:
    settings = fresh_bus(kafka_bootstrap, "erase", tmp_path / "var")
    env = settings_env(settings)
    (anna_cpr, anna_name), (bo_cpr, bo_name) = anna, bo = _person(), _person()
    named = _publish_sealed(settings, [anna, bo])
    # This bus's own topics on the broker's disk (the whole broker is searched by the
    # end-to-end test): every partition's folder, segments, snapshots and all.
    disk = (
        sorted((local_broker.home / "data").glob(f"{settings.topic_prefix}*"))
        if local_broker
        else []
    )
    scan_args = [a for d in disk for a in ("--scan", str(d))] or ["--scan", str(tmp_path)]
    watching = keyring_for(settings)  # a component's keyring, running all along

    before = ungebus(env, "erase-verify", anna_cpr, "--text", anna_name, *scan_args)
    assert before.returncode == 1, before.stdout + before.stderr  # still readable
    assert "FOUND" not in before.stdout  # but nothing personal in plaintext on the disk
    assert "sealed parts: 1 still open, 0 erased" in before.stdout

    erased = _erase(env, anna_cpr)
    assert erased.returncode == 0, erased.stderr
    assert f"Erased {named[anna_cpr]}: 1 data key(s) destroyed" in erased.stdout
    assert anna_cpr not in erased.stdout + erased.stderr

    [record] = _read_all(settings, settings.topics.erasures)
    assert record.key() == named[anna_cpr].encode()
    written = schemas.decode(record.value()).record
    assert (written["subject_pseudonym"], written["keys_destroyed"]) == (named[anna_cpr], 1)
    assert (written["reason"], written["principal"]) == ("request 2026-17, GDPR art. 17", "admin")
    assert anna_cpr not in str(written) and anna_name not in str(written)

    wait_until(lambda: watching.keys_of(named[anna_cpr]) == [], 10, "the running keyring forgot")
    watching.close()
    after = ungebus(env, "erase-verify", anna_cpr, "--text", anna_name, *scan_args)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "sealed parts: 0 still open, 1 erased" in after.stdout
    other = ungebus(env, "erase-verify", bo_cpr, "--text", bo_name, *scan_args)
    assert other.returncode == 1 and "1 still open, 0 erased" in other.stdout


def _read_all(settings: Settings, topic: str) -> list[Message]:
    consumer = Consumer(settings.kafka_config(**{"group.id": f"read-{uuid.uuid4().hex}"}))

    def fail(error: KafkaError, _partition: int | None) -> None:
        raise AssertionError(error.str())

    try:
        ends = {p: e for p, e in end_offsets(consumer, topic, 10).items() if e}
        return list(
            read_to_ends(consumer, topic, dict.fromkeys(ends, 0), ends, fail, deadline_s=30)
        )
    finally:
        consumer.close()


def _erase(env: dict[str, str], cpr: str) -> subprocess.CompletedProcess[str]:
    """``ungebus erase -`` with the CPR number on standard input, as a DPO keeps it out of the
    shell's history."""
    return subprocess.run(
        [sys.executable, "-m", "bus", "erase", "-", "--reason", "request 2026-17, GDPR art. 17"],
        input=cpr + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_only_admin_may_erase(kafka_broker: LocalKafka, tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    env = {**settings_env(settings), **kafka_broker.client_env("ops")}

    refused = ungebus(env, "erase", "0101041234", "--reason", "a test")

    assert refused.returncode != 0
    assert "runs as Kafka principal 'admin' only" in refused.stderr
    assert "0101041234" not in refused.stdout + refused.stderr
