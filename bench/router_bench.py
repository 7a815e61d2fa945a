"""Router benchmark: the faust router beside a raw confluent-kafka pass-through, same broker.

- throughput: N synthetic partner events preloaded on the inbound topics; the raw reference
  R_ref consumes them in batches and produces the same bytes to two topics (one task and one
  audit record each); R_fan (``bench.fan_relay``) relays them with exactly the router's writes
  (its task topics and partitions, the audit topic, its changelogs); then the real router
  (``ungebus streams --role router``, without the handover tracker, which runs as its own
  process) drains the same topics.
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

import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer

import schemas
from bench import fan_relay, raw_relay
from bench.cpu import CpuMark
from bench.logic_bench import decide_rate, logic_rate, policy_with_rules
from bench.recovery_bench import recovery
from bench.router_load import (
    produce_all,
    raw_relay_process,
    router_process,
    sealed,
    synthetic_events,
    utc_now,
    wire,
)
from bus.acls.cluster import ClusterAcls
from bus.acls.matrix import matrix
from bus.keystore import keyring_for
from bus.settings import PROJECT_ROOT, Settings
from bus.topics import delete_topics, ensure_topics
from streams.routing.consent import ConsentState
from streams.routing.decide import InboundEvent, decide
from streams.routing.policy import load_policy

BROKER_WARM_UP_S = 40.0


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
    env: dict[str, str] | None = None,
) -> dict[str, float | None]:
    """Open loop: publish at ``rate``/s regardless of the router; latency publish -> task on
    its topic, for the events published after the first ``warm_s`` seconds of load (the
    router's first seconds after start-up, and the timing consumer's, are not steady state).
    With ``raw``, the same through the raw reference (``bench.raw_relay``) instead: publish ->
    its copy on ``ref.task``."""
    events = synthetic_events(int(rate * (warm_s + seconds)), seed=23)
    on_wire = wire(settings, events) if raw else sealed(settings, wire(settings, events))
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
    policy, decided_at = load_policy(), utc_now()
    expected = {
        record["envelope"]["event_id"]
        for name, record in events[first_timed:]
        if raw or decide(InboundEvent(name, record), ConsentState(), policy, decided_at).routes
    }
    env = env or {}
    process = raw_relay_process(settings, log) if raw else router_process(settings, log, **env)
    with process as under_test:
        _warm_up(settings, consumer, read_id, seal=not raw)
        start = time.monotonic()
        pairs = enumerate(zip(on_wire, events, strict=True))
        for i, ((topic, key, value), (_name, record)) in pairs:
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
    settings: Settings,
    consumer: Consumer,
    read_id: Callable[[dict[str, Any]], str],
    *,
    seal: bool,
) -> None:
    """One event through first, so start-up is not counted as latency; ``seal``: as the
    connectors write it (the raw relay copies bytes and its reader decodes them plain)."""
    name, record = synthetic_events(1, seed=99)[0]
    arrived: dict[str, float] = {}
    on_wire = wire(settings, [(name, record)])
    produce_all(settings, sealed(settings, on_wire) if seal else on_wire)
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


def run(
    bootstrap: str,
    count: int = 20_000,
    people: int = 1_000_000,
    work: Path | None = None,
    router_login: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Every router measure. With ``router_login`` (a principal's ``UNGEBUS_KAFKA_*``) the
    router runs under it, each measure's topics under the ACL matrix (applied as the bench's
    own login, which must be admin's); else the router logs in as the bench does."""
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
        # Every topic, faust's own too, made here as the bench's login (the router starts
        # with --topics-ready: under its own principal it may not create the bus's topics).
        from streams.runtime.app import internal_topics

        specs = [*settings.topics.catalogue(), *internal_topics(settings)]
        ensure_topics(settings.kafka_config(), specs)
        if router_login:  # this measure's ACLs (the previous measure's are removed)
            ClusterAcls(settings.kafka_config()).apply(matrix(settings.topics, []))
        return settings

    try:
        return _measure(fresh, count, people, log, router_login or {})
    finally:  # a broker that keeps every run's topics runs out of file handles
        admin = Settings(kafka_bootstrap_servers=bootstrap).kafka_config()
        for prefix in prefixes:
            delete_topics(admin, prefix)


def _measure(
    fresh: Callable[[str], Settings], count: int, people: int, log: Path, login: dict[str, str]
) -> dict[str, Any]:
    results: dict[str, Any] = {"events": count}
    settings = fresh("throughput")
    _step(f"generating and preloading {count} events")
    preloaded = sealed(settings, wire(settings, synthetic_events(count)))
    produce_all(settings, preloaded)
    _step("raw confluent-kafka pass-through (R_ref: each record to two topics)")
    results["raw_events_per_s"] = raw_pass_through(settings, count)
    _step("raw confluent-kafka pass-through with the router's writes (R_fan)")
    fan = fan_relay.fan_settings(settings)
    with keyring_for(settings) as keyring:
        fan_plan = fan_relay.plan(fan, preloaded, keyring)
    results["fan_writes_per_event"] = fan_plan.by_kind(fan)
    results["fan_events_per_s"] = fan_relay.fan_pass_through(settings, fan_plan, count)
    results["fan_to_raw"] = results["fan_events_per_s"] / results["raw_events_per_s"]
    _step("router (tracing on: a span per record and per output, to the local trace file)")
    results["router_events_per_s"], results["router_cpu"] = router_throughput(
        settings, count, log, **login
    )
    results["ratio"] = results["router_events_per_s"] / results["raw_events_per_s"]
    results["ratio_to_fan"] = results["router_events_per_s"] / results["fan_events_per_s"]
    _step("the router's own work on a record, in this process (no Kafka, no faust, no spans)")
    results["logic_events_per_s"] = logic_rate(settings, synthetic_events(2000, seed=7), 5.0)
    results["logic_ratio"] = results["logic_events_per_s"] / results["raw_events_per_s"]
    untraced = fresh("untraced")
    _step(f"router with telemetry off (OTEL_SDK_DISABLED=true), {count} more events")
    produce_all(untraced, sealed(untraced, wire(untraced, synthetic_events(count, seed=12))))
    results["router_untraced_events_per_s"], results["router_untraced_cpu"] = router_throughput(
        untraced, count, log, OTEL_SDK_DISABLED="true", **login
    )
    results["untraced_ratio_to_fan"] = (
        results["router_untraced_events_per_s"] / results["fan_events_per_s"]
    )
    results["tracing_on_to_off"] = (
        results["router_events_per_s"] / results["router_untraced_events_per_s"]
    )
    half = results["router_events_per_s"] / 2
    # A fresh broker compiles (JIT) the paths this load takes for about a minute: three
    # 25-second runs in a row on a new broker here gave p99 5.3 s, 2.5 s, 0.32 s while its
    # compiler threads went from 30 % to 6 % of a core. Warm it with the same load first.
    _step(f"warming the broker up: {BROKER_WARM_UP_S:.0f} s at {half:.0f} events/s, not timed")
    latency_at(fresh("broker-warm-up"), half, BROKER_WARM_UP_S, log, env=login)
    results["broker_warm_up_s"] = BROKER_WARM_UP_S
    _step(f"latency at half the router's maximum ({half:.0f} events/s)")
    results["latency_at_half_load"] = latency_at(fresh("latency"), half, 20.0, log, env=login)
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
        results["consent_recovery"] = recovery(fresh("recovery"), people, log, **login)
    except RuntimeError as exc:  # report what was measured; say what was not
        results["consent_recovery"] = {"people": people, "failed": str(exc)}
    return results


def _step(text: str) -> None:
    print(f"  router bench: {text}...", flush=True)


if __name__ == "__main__":
    import json

    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092"), indent=2))
