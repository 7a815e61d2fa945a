"""What TLS + SASL/SCRAM costs: the same raw work on a secured and on a plaintext broker.

Two fresh brokers of the same size, started in turn on free ports, each alone on the machine
while it is measured and stopped when done: the secured one (SASL_SSL + SCRAM-SHA-512 and
the StandardAuthorizer, ``deploy/local/security.py``; the clients log in as admin) and an
open (PLAINTEXT) one. On each, with the same records:

- connection set-up: from a new client to its first metadata answer (TCP, and on the secured
  broker the TLS handshake and the SCRAM exchange), the median of a few;
- a bare producer (acks=all, idempotent: ``Settings.producer_config``) sending N records;
- the raw pass-through (``router_bench.raw_pass_through``): those N records consumed and
  each produced to two topics, Kafka's acks awaited, then committed.

Each broker first does the same work once over fewer records, untimed (a new broker compiles
its hot paths in its first minute); then the median of ``ROUNDS`` timed rounds, each on
topics of its own. Reported: events/s on each broker and secured / plaintext.
Not a test: nothing asserts a speed.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from bench.router_bench import raw_pass_through
from bench.router_load import synthetic_events, wire
from bus.ports import free_ports
from bus.settings import Settings
from bus.topics import ensure_topics
from deploy.local.broker import LocalKafka
from deploy.local.security import ADMIN

ROUNDS = 3
CONNECTIONS = 7
HEAP = "512m"
PREFIX = "bench-sec"


def broker_settings(broker: LocalKafka, principal: str = ADMIN, **fields: Any) -> Settings:
    """Settings that log in to ``broker`` as ``principal`` (whatever the environment says)."""
    login: dict[str, Any] = {
        "kafka_sasl_mechanism": None,
        "kafka_sasl_username": None,
        "kafka_sasl_password": None,
        "kafka_sasl_password_file": None,
        "kafka_ssl_ca_location": None,
    }
    for name, value in broker.client_env(principal).items():
        login[name.removeprefix("UNGEBUS_").lower()] = value
    return Settings(kafka_bootstrap_servers=broker.bootstrap_servers, **login, **fields)


def run(work: Path, count: int = 20_000) -> dict[str, Any]:
    """Both brokers in turn (secured first); their figures and the ratios."""
    payloads = [value for _topic, _key, value in wire(Settings(), synthetic_events(count, 31))]
    results: dict[str, Any] = {"events": count, "rounds": ROUNDS, "heap": HEAP}
    for label, secure in (("secured", True), ("plaintext", False)):
        port, controller = free_ports(2)
        broker = LocalKafka(
            home=work / label, port=port, controller_port=controller, heap=HEAP, secure=secure
        )
        _step(f"starting a {label} broker on {broker.bootstrap_servers}")
        broker.up(echo=lambda _m: None)
        try:
            results[label] = measure(broker, payloads)
        finally:
            broker.down(echo=lambda _m: None)
    secured, plain = results["secured"], results["plaintext"]
    for figure in ("producer_events_per_s", "pass_through_events_per_s"):
        results[figure.replace("_events_per_s", "_ratio")] = secured[figure] / plain[figure]
    return results


def measure(broker: LocalKafka, payloads: list[bytes]) -> dict[str, Any]:
    """Connection set-up, then the warm-up and the timed rounds, on one broker."""

    def settings_of(prefix: str) -> Settings:
        return broker_settings(broker, topic_prefix=prefix)

    connect_ms = [connection_ms(settings_of(f"{PREFIX}-connect.")) for _ in range(CONNECTIONS)]
    _step("warming up (not timed)")
    one_round(settings_of(f"{PREFIX}-warm."), payloads[: max(1, len(payloads) // 4)])
    rounds = [one_round(settings_of(f"{PREFIX}-{i}."), payloads) for i in range(ROUNDS)]
    return {
        "connect_ms": round(statistics.median(connect_ms), 1),
        "producer_events_per_s": statistics.median(r[0] for r in rounds),
        "pass_through_events_per_s": statistics.median(r[1] for r in rounds),
    }


def connection_ms(settings: Settings) -> float:
    """Milliseconds from a new client to its first metadata answer."""
    started = time.perf_counter()
    metadata = AdminClient(settings.kafka_config()).list_topics(timeout=30)
    elapsed = (time.perf_counter() - started) * 1000
    if not metadata.brokers:
        raise RuntimeError("the broker answered without itself in the metadata")
    return elapsed


def one_round(settings: Settings, payloads: list[bytes]) -> tuple[float, float]:
    """(bare producer events/s, raw pass-through events/s) over ``payloads`` on fresh topics."""
    inbound = settings.topics.inbound_events
    ensure_topics(settings.kafka_config(), [s for s in settings.topics.catalogue()
                                            if s.name == inbound])  # fmt: skip
    producer = Producer(settings.producer_config())
    # Not timed: connecting, the metadata, the idempotent producer's id (one record through).
    producer.produce(inbound, key=b"warm", value=payloads[0])
    if producer.flush(60):
        raise RuntimeError("the bare producer's first record was not delivered")
    started = time.perf_counter()
    for i, value in enumerate(payloads):
        while True:
            try:
                producer.produce(inbound, key=f"{i:064x}".encode(), value=value)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    left = producer.flush(60)
    produced_s = time.perf_counter() - started
    if left:
        raise RuntimeError(f"the bare producer left {left} records undelivered")
    return len(payloads) / produced_s, raw_pass_through(settings, len(payloads) + 1)


def row(figures: dict[str, Any]) -> tuple[str, str, str]:
    """The results table's row."""
    secured, plain = figures["secured"], figures["plaintext"]
    return (
        "TLS + SASL/SCRAM vs plaintext: bare producer (acks=all, idempotent) / raw pass-through",
        f"secured {secured['producer_events_per_s']:,.0f} / "
        f"{secured['pass_through_events_per_s']:,.0f} events/s; plaintext "
        f"{plain['producer_events_per_s']:,.0f} / {plain['pass_through_events_per_s']:,.0f}",
        f"secured / plaintext: {figures['producer_ratio']:.2f} / "
        f"{figures['pass_through_ratio']:.2f}; connecting {secured['connect_ms']:.0f} ms vs "
        f"{plain['connect_ms']:.0f} ms",
    )


def _step(text: str) -> None:
    print(f"  security bench: {text}...", flush=True)
