"""The router restarted over a consent table of many people: time until it routes again."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer

import schemas
from bench.router_load import produce_all, router_process, synthetic_events, utc_now, wire
from bus.services import EXIT_RESTART
from bus.settings import Settings
from streams.routing.consent import Consent, ConsentState

RECOVERY_TIMEOUT_S = 420.0
MAX_RESTARTS = 2


def recovery(settings: Settings, people: int, log: Path, **env: str) -> dict[str, float]:
    """Restart time of the router (``env`` added to its environment) over a consent table of
    ``people`` (written to its changelog)."""
    empty, _ = _time_to_first_route(settings, log, "empty", env)
    changelog = f"{settings.topic_prefix}ungebus-router-consents-changelog"
    state = ConsentState(
        (
            Consent(
                "bench", "adult_relocation", "youth_unit", "161", "young_person",
                utc_now(), utc_now().date() + dt.timedelta(days=365),
            ),
        )
    ).to_json()  # fmt: skip
    producer = Producer(settings.producer_config(**{"linger.ms": 50, "batch.num.messages": 10000}))
    start = time.monotonic()
    for i in range(people):
        key = f"{i:064x}".encode()
        while True:
            try:
                producer.produce(changelog, key=key, value=state, partition=_partition(key))
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)
    written = time.monotonic() - start
    full, restarts = _time_to_first_route(settings, log, "full", env)
    return {
        "people": people,
        "changelog_write_s": written,
        "restart_empty_s": empty,
        "restart_full_s": full,
        "recovery_s": full - empty,
        "watchdog_restarts": restarts,
    }


def _partition(key: bytes) -> int:
    from aiokafka.partitioner import murmur2

    return int((murmur2(key) & 0x7FFFFFFF) % 3)


def _time_to_first_route(
    settings: Settings, log: Path, label: str, env: dict[str, str]
) -> tuple[float, int]:
    """Seconds from starting the router until it routed one event, and how often it had to be
    started again: a router whose watchdog finds it stalled exits with EXIT_RESTART, and this,
    like its supervisor in production, starts it again (at most MAX_RESTARTS times)."""
    name, record = synthetic_events(1, seed=hash(label) % 1000)[0]
    event_id = record["envelope"]["event_id"]
    consumer = Consumer(settings.consumer_config(f"{settings.topic_prefix}rec-{label}"))
    consumer.subscribe([settings.topics.audit_routing])
    start, deadline = time.monotonic(), time.monotonic() + RECOVERY_TIMEOUT_S
    found, restarts = False, 0
    try:
        while not found and time.monotonic() < deadline and restarts <= MAX_RESTARTS:
            with router_process(settings, log, **env) as process:
                if restarts == 0:
                    produce_all(settings, wire(settings, [(name, record)]))
                while not found and time.monotonic() < deadline and process.poll() is None:
                    for message in consumer.consume(num_messages=1000, timeout=0.2):
                        value = message.value()
                        if message.error() is None and value is not None:
                            found = found or schemas.decode(value).record["event_id"] == event_id
                if not found and process.poll() not in (None, EXIT_RESTART):
                    raise RuntimeError(f"the router exited with {process.returncode} ({label})")
            restarts += 0 if found else 1
    finally:
        consumer.close()
    if not found:
        raise RuntimeError(
            f"the router did not route again within {RECOVERY_TIMEOUT_S:.0f} s ({label}, "
            f"{restarts} restarts)"
        )
    return time.monotonic() - start, restarts
