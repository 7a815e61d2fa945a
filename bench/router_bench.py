"""Router benchmark: the faust router beside a raw confluent-kafka pass-through, same broker.

- throughput: N synthetic partner events preloaded on the inbound topics; the raw reference
  consumes them in batches and produces the same bytes to two topics (the router's task +
  audit write load); then the real router (``ungebus streams --role router``, without the
  handover tracker, which runs as its own process) drains the same topics.
  Events/s for both, and their ratio; and the router again over N fresh events with tracing
  off (``OTEL_SDK_DISABLED=true``), for what tracing costs.
- logic: the router's own work on a record (``Router.handle``) in this process, without
  Kafka, faust or spans: the most one router process could route on this machine.
- latency: an open-loop generator publishes at half the router's own maximum; p50/p99 from
  the partner's publish to the task on its topic.
- policy size: decide() per second with the shipped policy (~10 rules) and with 1,000 rules.
- recovery: the router restarted over a consent table of 1,000,000 people (its changelog),
  time until it routes again, beside a restart over an empty table.

Not a test: it asserts nothing about speed. Run with ``make bench``.
"""

from __future__ import annotations

import datetime as dt
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer

import schemas
from bench import raw_relay
from bench.cpu import CpuMark
from bus.demo_partners import demo_registry
from bus.services import EXIT_RESTART
from bus.settings import PROJECT_ROOT, Settings
from bus.topics import delete_topics, ensure_topics
from streams.routing.consent import Consent, ConsentState
from streams.routing.decide import InboundEvent, decide
from streams.routing.outputs import InMessage
from streams.routing.policy import Policy, load_policy
from streams.routing.router import Router, SubjectStore
from streams.routing.senders import Senders
from streams.runtime.state import StagedTables

KEY = b"bench-only-pseudonym-key"
RECOVERY_TIMEOUT_S = 420.0
MAX_RESTARTS = 2
BROKER_WARM_UP_S = 40.0
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


def _wire(
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


def _produce_all(settings: Settings, wire: list[tuple[str, bytes, bytes]]) -> None:
    producer = Producer(settings.producer_config(**{"linger.ms": 20}))
    for topic, key, value in wire:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(60)


def _count_until(
    settings: Settings,
    topics: list[str],
    target: int,
    timeout_s: float,
    group: str,
    router_pid: int | None = None,
) -> tuple[float, float, dict[str, float | None]]:
    """Read ``topics`` until ``target`` records came: (time of first, time of last, CPU shares
    in between when ``router_pid`` is given)."""
    consumer = Consumer(settings.consumer_config(group, **{"isolation.level": "read_uncommitted"}))
    consumer.subscribe(topics)
    seen, first, last = 0, 0.0, 0.0
    started: CpuMark | None = None  # at the first record
    deadline = time.monotonic() + timeout_s
    try:
        while seen < target and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=1000, timeout=0.2)
            now = time.monotonic()
            for message in batch:
                if message.error() is None:
                    seen += 1
                    if not first and router_pid is not None:
                        started = CpuMark.now(router_pid)
                    first = first or now
                    last = now
        cpu = CpuMark.now(router_pid).since(started) if router_pid and started else {}
    finally:
        consumer.close()
    if seen < target:
        raise RuntimeError(f"only {seen} of {target} records arrived within {timeout_s:.0f} s")
    return first, last, cpu


def raw_pass_through(settings: Settings, count: int) -> float:
    """Events/s of a bare confluent-kafka consumer + producer doing the router's I/O."""
    outputs = raw_relay.create_outputs(settings)
    consumer = Consumer(settings.consumer_config(f"{settings.topic_prefix}ref"))
    consumer.subscribe([settings.topics.inbound_events])
    producer = Producer(settings.producer_config())
    done, start = 0, 0.0
    while done < count:
        batch = consumer.consume(num_messages=500, timeout=1.0)
        if batch:  # the clock starts with the first records, not with joining the group
            start = start or time.monotonic()
        done += raw_relay.pass_on(batch, consumer, producer, outputs)
    elapsed = time.monotonic() - start
    consumer.close()
    return count / elapsed


@contextmanager
def router_process(settings: Settings, log: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    with _process(
        ["bus", "streams", "--role", "router", "--loglevel", "warn"], settings, log, **env
    ) as process:
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


def router_throughput(
    settings: Settings, count: int, log: Path, **env: str
) -> tuple[float, dict[str, float | None]]:
    """Events/s of the router draining ``count`` preloaded events, and the CPU shares then."""
    with router_process(settings, log, **env) as router:
        first, last, cpu = _count_until(
            settings, [settings.topics.audit_routing], count, 600, f"{settings.topic_prefix}thr",
            router.pid,
        )  # fmt: skip
    return count / max(last - first, 1e-6), cpu


def latency_at(
    settings: Settings,
    rate: float,
    seconds: float,
    log: Path,
    warm_s: float = 5.0,
    raw: bool = False,
    **env: str,
) -> dict[str, float | None]:
    """Open loop: publish at ``rate``/s regardless of the router; latency publish -> task on
    its topic, for the events published after the first ``warm_s`` seconds of load (the
    router's first seconds after start-up, and the timing consumer's, are not steady state).
    With ``raw``, the same through the raw reference (``bench.raw_relay``) instead: publish ->
    its copy on ``ref.task``."""
    events = synthetic_events(int(rate * (warm_s + seconds)), seed=23)
    wire = _wire(settings, events)
    if raw:
        topics, read_id = [raw_relay.outputs(settings)[0]], _inbound_event_id
    else:
        topics = settings.topics.all_tasks()
        read_id = _task_event_id
    consumer = Consumer(
        settings.consumer_config(
            f"{settings.topic_prefix}lat", **{"isolation.level": "read_uncommitted"}
        )
    )
    consumer.subscribe(topics)
    published: dict[str, float] = {}
    arrived: dict[str, float] = {}
    producer = Producer(settings.producer_config(**{"linger.ms": 0}))
    first_timed = int(rate * warm_s)
    policy, decided_at = load_policy(), _now()
    expected = {
        record["envelope"]["event_id"]
        for name, record in events[first_timed:]
        if raw or decide(InboundEvent(name, record), ConsentState(), policy, decided_at).routes
    }
    process = raw_relay_process(settings, log) if raw else router_process(settings, log, **env)
    with process as under_test:
        _warm_up(settings, consumer, read_id)
        start = time.monotonic()
        for i, ((topic, key, value), (_name, record)) in enumerate(zip(wire, events, strict=True)):
            if i == first_timed:
                timed_from = CpuMark.now(under_test.pid)
            due = start + i / rate
            while (now := time.monotonic()) < due:
                # confluent-kafka rounds a timeout down to whole milliseconds: under 1 ms, poll
                # returned at once and this loop spun, half a core at 500 events/s.
                _drain(consumer, arrived, read_id, timeout=min(max(due - now, 0.001), 0.005))
            event_id = record["envelope"]["event_id"]
            published[event_id] = time.monotonic()
            producer.produce(topic, key=key, value=value)
            producer.poll(0)
        cpu = CpuMark.now(under_test.pid).since(timed_from, "relay" if raw else "router")
        producer.flush(30)
        deadline = time.monotonic() + 60
        while not expected <= arrived.keys() and time.monotonic() < deadline:
            _drain(consumer, arrived, read_id, timeout=0.2)
    consumer.close()
    latencies = sorted((arrived[e] - published[e]) * 1000 for e in expected if e in arrived)
    return {
        "rate_per_s": rate,
        "events": len(expected),
        "arrived": len(latencies),
        "warm_up_s": warm_s,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "max_ms": latencies[-1],
        **cpu,  # while the timed events were published
    }


def _task_event_id(record: dict[str, Any]) -> str:
    return str(record["event_id"])


def _inbound_event_id(record: dict[str, Any]) -> str:
    return str(record["envelope"]["event_id"])


def _warm_up(
    settings: Settings, consumer: Consumer, read_id: Callable[[dict[str, Any]], str]
) -> None:
    """One event through first, so start-up is not counted as latency."""
    name, record = synthetic_events(1, seed=99)[0]
    arrived: dict[str, float] = {}
    _produce_all(settings, _wire(settings, [(name, record)]))
    deadline = time.monotonic() + 120
    while record["envelope"]["event_id"] not in arrived and time.monotonic() < deadline:
        _drain(consumer, arrived, read_id, timeout=0.2)


def _drain(
    consumer: Consumer,
    arrived: dict[str, float],
    read_id: Callable[[dict[str, Any]], str],
    timeout: float,
) -> None:
    """Read the records that are there, each timed when read. ``poll`` returns as soon as a
    record is there (``consume(n, timeout)`` waits for n records or the whole timeout, which
    made tasks read at the end of a run look up to 200 ms late)."""
    message = consumer.poll(max(timeout, 0))
    while message is not None:
        value = message.value()
        if message.error() is None and value is not None:
            now = time.monotonic()
            arrived.setdefault(read_id(schemas.decode(value).record), now)
        message = consumer.poll(0)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def policy_with_rules(policy: Policy, total: int) -> Policy:
    """The shipped policy padded with rules that never match (a foreign source kind)."""
    raw = policy.model_dump(mode="python")
    base = raw["rules"]
    padding = []
    for i in range(total - len(base)):
        rule = dict(base[i % len(base)])
        rule["id"] = f"padding.{i}"
        rule["age"] = {"min": 100, "max": 150}
        padding.append(rule)
    raw["rules"] = [*padding, *base]
    return Policy.model_validate(raw)


def logic_rate(
    settings: Settings, events: list[tuple[str, dict[str, Any]]], seconds: float
) -> float:
    """Events/s of the router's own work on a record (decode, decide, the task and audit
    records encoded, the tables' state) in this process: no Kafka, no faust, no spans. A
    ceiling for one router process on this machine, whatever the framework around it."""
    senders = Senders.from_registry(demo_registry())
    router = Router(load_policy(), settings.topics, senders)
    dead_letters = settings.topics.deadletter
    messages = [
        InMessage(topic, 0, offset, key, value, [])
        for offset, (topic, key, value) in enumerate(_wire(settings, events))
    ]
    first_pass = _store()
    dead = [m for m in messages for o in router.handle(m, first_pass) if o.topic == dead_letters]
    if dead:  # the dead-letter path is cheaper: it would flatter the ceiling
        raise ValueError(f"{len(dead)} of {len(messages)} bench events were not routable")
    refused = [n for n, r in events if senders.refusal(n, r["envelope"]) is not None]
    if refused:  # so is a sender the partner registry does not know
        raise ValueError(f"{len(refused)} of {len(messages)} bench events have unknown senders")
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        store = _store()  # a new state for each pass: no duplicates
        for message in messages:
            router.handle(message, store)
        done += len(messages)
    return done / (time.perf_counter() - start)


def _store() -> SubjectStore:
    return SubjectStore(StagedTables.in_memory(*SubjectStore.TABLES))


def decide_rate(policy: Policy, events: list[tuple[str, dict[str, Any]]], seconds: float) -> float:
    inbound = [InboundEvent(n, r) for n, r in events]
    state, now = ConsentState(), _now()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        decide(inbound[done % len(inbound)], state, policy, now)
        done += 1
    return done / (time.perf_counter() - start)


def recovery(settings: Settings, people: int, log: Path) -> dict[str, float]:
    """Restart time of the router over a consent table of ``people`` (written to its changelog)."""
    empty, _ = _time_to_first_route(settings, log, "empty")
    changelog = f"{settings.topic_prefix}ungebus-router-consents-changelog"
    state = ConsentState(
        (
            Consent(
                "bench", "adult_relocation", "youth_unit", "161", "young_person",
                _now(), _now().date() + dt.timedelta(days=365),
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
    full, restarts = _time_to_first_route(settings, log, "full")
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


def _time_to_first_route(settings: Settings, log: Path, label: str) -> tuple[float, int]:
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
            with router_process(settings, log) as process:
                if restarts == 0:
                    _produce_all(settings, _wire(settings, [(name, record)]))
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


def run(
    bootstrap: str, count: int = 20_000, people: int = 1_000_000, work: Path | None = None
) -> dict[str, Any]:
    work = work or PROJECT_ROOT / "var" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "router.log"

    prefixes: list[str] = []

    def fresh(label: str) -> Settings:
        settings = Settings(
            kafka_bootstrap_servers=bootstrap,
            topic_prefix=f"bench-{label}-{uuid.uuid4().hex[:6]}.",
            var_dir=work / label,
        )
        (settings.var_dir / "faust").mkdir(parents=True, exist_ok=True)
        prefixes.append(settings.topic_prefix)
        ensure_topics(settings.kafka_config(), settings.topics.catalogue())
        return settings

    try:
        return _measure(fresh, count, people, log)
    finally:  # a broker that keeps every run's topics runs out of file handles
        admin = Settings(kafka_bootstrap_servers=bootstrap).kafka_config()
        for prefix in prefixes:
            delete_topics(admin, prefix)


def _measure(
    fresh: Callable[[str], Settings], count: int, people: int, log: Path
) -> dict[str, Any]:
    results: dict[str, Any] = {"events": count}
    settings = fresh("throughput")
    _step(f"generating and preloading {count} events")
    _produce_all(settings, _wire(settings, synthetic_events(count)))
    _step("raw confluent-kafka pass-through")
    results["raw_events_per_s"] = raw_pass_through(settings, count)
    _step("router (tracing on: a span per record and per output, to the local trace file)")
    results["router_events_per_s"], results["router_cpu"] = router_throughput(settings, count, log)
    results["ratio"] = results["router_events_per_s"] / results["raw_events_per_s"]
    _step("the router's own work on a record, in this process (no Kafka, no faust, no spans)")
    results["logic_events_per_s"] = logic_rate(settings, synthetic_events(2000, seed=7), 5.0)
    results["logic_ratio"] = results["logic_events_per_s"] / results["raw_events_per_s"]
    untraced = fresh("untraced")
    _step(f"router with telemetry off (OTEL_SDK_DISABLED=true), {count} more events")
    _produce_all(untraced, _wire(untraced, synthetic_events(count, seed=12)))
    results["router_untraced_events_per_s"], results["router_untraced_cpu"] = router_throughput(
        untraced, count, log, OTEL_SDK_DISABLED="true"
    )
    results["tracing_on_to_off"] = (
        results["router_events_per_s"] / results["router_untraced_events_per_s"]
    )
    half = results["router_events_per_s"] / 2
    # A fresh broker compiles (JIT) the paths this load takes for about a minute: three
    # 25-second runs in a row on a new broker here gave p99 5.3 s, 2.5 s, 0.32 s while its
    # compiler threads went from 30 % to 6 % of a core. Warm it with the same load first.
    _step(f"warming the broker up: {BROKER_WARM_UP_S:.0f} s at {half:.0f} events/s, not timed")
    latency_at(fresh("broker-warm-up"), half, BROKER_WARM_UP_S, log)
    results["broker_warm_up_s"] = BROKER_WARM_UP_S
    _step(f"latency at half the router's maximum ({half:.0f} events/s)")
    results["latency_at_half_load"] = latency_at(fresh("latency"), half, 20.0, log)
    _step(f"latency of the raw reference at the same rate ({half:.0f} events/s)")
    results["raw_latency_at_half_load"] = latency_at(
        fresh("raw-latency"), half, 20.0, log, raw=True
    )
    _step("decide() with 10 and 1,000 rules")
    policy, events = load_policy(), synthetic_events(2000, seed=5)
    results["decide_per_s"] = {
        f"{len(policy.rules)}_rules": decide_rate(policy, events, 3.0),
        "1000_rules": decide_rate(policy_with_rules(policy, 1000), events, 3.0),
    }
    _step(f"consent-table recovery with {people:,} people")
    try:
        results["consent_recovery"] = recovery(fresh("recovery"), people, log)
    except RuntimeError as exc:  # report what was measured; say what was not
        results["consent_recovery"] = {"people": people, "failed": str(exc)}
    return results


def _step(text: str) -> None:
    print(f"  router bench: {text}...", flush=True)


if __name__ == "__main__":
    import json

    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092"), indent=2))
