"""The router benches' load: synthetic partner events on the wire, and the processes
measured (the router, the raw relay), each with its own log."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

import schemas
from bench import raw_relay
from bus.crypto import seal
from bus.keystore import keyring_for
from bus.settings import PROJECT_ROOT, Settings

KEY = b"bench-only-pseudonym-key"

ROUTED_KINDS = [
    "dropout_notice",
    "release_planning_prison",
    "handover_uu",
    "school_absence_signal",
]


def synthetic_events(count: int, seed: int = 11) -> list[tuple[str, dict[str, Any]]]:
    """(schema name, record) for ``count`` valid synthetic partner events, fresh ids."""
    per_kind = max(1, count // len(ROUTED_KINDS))
    batch = schemas.generate_payloads(
        seed=seed, count=per_kind * 2, invalid_share=0.0, kinds=ROUTED_KINDS
    )
    events: list[tuple[str, dict[str, Any]]] = []
    for kind in ROUTED_KINDS:
        for payload in batch.payloads[kind][:per_kind]:
            model = schemas.parse_partner(kind, payload, today=batch.reference_date)
            name, record = schemas.to_record(model, KEY, str(uuid.uuid4()))
            events.append((name, record))
    out = []
    for i in range(count):
        name, record = events[i % len(events)]
        envelope = {**record["envelope"], "event_id": str(uuid.uuid4())}
        out.append((name, {**record, "envelope": envelope}))
    return out


def wire(
    settings: Settings, events: list[tuple[str, dict[str, Any]]]
) -> list[tuple[str, bytes, bytes]]:
    return [
        (
            settings.topics.inbound_events,
            record["envelope"]["subject"]["pseudonym"].encode(),
            schemas.encode(name, record),
        )
        for name, record in events
    ]


def sealed(
    settings: Settings, on_wire: list[tuple[str, bytes, bytes]]
) -> list[tuple[str, bytes, bytes]]:
    """``on_wire`` as the connectors write it: each value sealed under its person's data key,
    the keys made on the key store first (one round trip for all), as the connectors make them
    before the router reads an event."""
    with keyring_for(settings) as keyring:
        keyring.sealing_keys(key.decode() for _topic, key, _value in on_wire)
        return [(topic, key, seal(keyring, key.decode(), value)) for topic, key, value in on_wire]


def produce_all(settings: Settings, wire: list[tuple[str, bytes, bytes]]) -> None:
    producer = Producer(settings.producer_config(**{"linger.ms": 20}))
    for topic, key, value in wire:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(60)


@contextmanager
def router_process(settings: Settings, log: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """The router, on topics the bench has made (``--topics-ready``, as under its own
    principal, which may not create the bus's topics); ``env`` added to its environment."""
    args = ["bus", "streams", "--role", "router", "--loglevel", "warn", "--topics-ready"]
    with _process(args, settings, log, **env) as process:
        yield process


@contextmanager
def raw_relay_process(settings: Settings, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The raw reference as its own process (``bench.raw_relay``), like the router."""
    raw_relay.create_outputs(settings)
    args = ["bench.raw_relay", settings.kafka_bootstrap_servers, settings.topic_prefix]
    with _process(args, settings, log) as process:
        yield process


@contextmanager
def _process(
    module_and_args: list[str], settings: Settings, log: Path, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    import os
    import signal

    environment = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "UNGEBUS_TOPIC_PREFIX": settings.topic_prefix,
        "UNGEBUS_VAR_DIR": str(settings.var_dir),
        **env,
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", *module_and_args],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
