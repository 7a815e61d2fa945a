"""How long a restarted component takes to handle its first record (``bench.restart_bench``).

For the inbox and the router: start it, let it handle a record, stop it (SIGTERM, as
``ungebus run`` and systemd do, or SIGKILL, as a crash or a supervisor's last resort does),
publish the next record, start it again, and time from the start of the new process until
that record is handled (the task in the inbox's database; the router's audit record on
``audit.routing``). With ``--broker-restart`` the broker is stopped and started with its data
between the two processes, as ``ungebus demo`` does between two runs.

A measurement, not a test: nothing asserts a time. It runs on a throwaway local broker of its
own (its ports chosen free), so it never touches a broker you run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

import schemas
from bench.router_load import synthetic_events
from bus.ports import free_ports
from bus.settings import PROJECT_ROOT, Settings
from bus.topics import ensure_topics
from deploy.local.broker import LocalKafka

KOMMUNEKODE = "161"
UNIT = "youth_unit"
GIVE_UP_S = 120.0


def routed_task() -> dict[str, Any]:
    """A task for Glostrup's youth unit, as the router writes it."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    event_id = str(uuid.uuid4())
    return {
        "task_id": f"restart-{event_id}",
        "event_id": event_id,
        "event_type": "dk.ungebus.dropout_notice.v1",
        "unit": UNIT,
        "kommunekode": KOMMUNEKODE,
        "basis": {"kind": "statute", "id": "kui_12c", "citation": "KUI-loven § 12 c"},
        "consent_id": None,
        "due_by": now + dt.timedelta(days=3),
        "priority": "high",
        "policy_version": "bench",
        "subject_pseudonym": uuid.uuid4().hex * 2,
        "details": {},
        "sealed_details": None,
        "routed_at": now,
    }


class Component:
    """One component as ``ungebus run`` starts it: its own process, its log, its record."""

    name: str
    args: tuple[str, ...]

    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.settings.kafka_bootstrap_servers,
            "UNGEBUS_TOPIC_PREFIX": self.settings.topic_prefix,
            "UNGEBUS_VAR_DIR": str(self.settings.var_dir),
            "UNGEBUS_INBOX_PORT": "0",
            "OTEL_SDK_DISABLED": "true",
        }
        env.pop("UNGEBUS_METRICS_PORT", None)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bus", *self.args],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self, how: signal.Signals) -> int:
        assert self.process is not None
        self.process.send_signal(how)
        return self.process.wait(60)

    def publish(self) -> Callable[[], bool]:
        """Publish the next record; return a check that it has been handled."""
        raise NotImplementedError


class InboxComponent(Component):
    name = "inbox"
    args = ("inbox",)

    def publish(self) -> Callable[[], bool]:
        task = routed_task()
        topic = self.settings.topics.tasks(KOMMUNEKODE, UNIT)
        _produce(self.settings, topic, task["subject_pseudonym"].encode(),
                 schemas.encode("routed_task", task))  # fmt: skip
        database = self.settings.var_dir / "inbox.db"

        def stored() -> bool:
            if not database.exists():
                return False
            try:
                with sqlite3.connect(database) as db:
                    found = db.execute("SELECT 1 FROM tasks WHERE task_id = ?", (task["task_id"],))
                    return found.fetchone() is not None
            except sqlite3.OperationalError:  # not migrated yet
                return False

        return stored


class RouterComponent(Component):
    name = "router"
    args = ("streams", "--role", "router", "--loglevel", "warn")

    def publish(self) -> Callable[[], bool]:
        (name, record), = synthetic_events(1, seed=int(time.time()))  # fmt: skip
        event_id = record["envelope"]["event_id"]
        audit = self.settings.topics.audit_routing
        reader = Consumer(self.settings.consumer_config(f"restart-bench-{uuid.uuid4().hex}"))
        partitions = reader.list_topics(audit, timeout=10).topics[audit].partitions
        reader.assign([TopicPartition(audit, p, OFFSET_BEGINNING) for p in partitions])
        _produce(self.settings, self.settings.topics.inbound_events,
                 record["envelope"]["subject"]["pseudonym"].encode(),
                 schemas.encode(name, record))  # fmt: skip
        found: list[bool] = []

        def audited() -> bool:
            for message in reader.consume(num_messages=100, timeout=0.1):
                if message.error() is None and event_id in (message.value() or b"").decode(
                    "utf-8", "replace"
                ):
                    found.append(True)
            if found:
                reader.close()
            return bool(found)

        return audited


def _produce(settings: Settings, topic: str, key: bytes, value: bytes) -> None:
    producer = Producer(settings.producer_config())
    producer.produce(topic, key=key, value=value)
    if producer.flush(30):
        raise RuntimeError(f"Kafka did not take the record for {topic}")


def _wait(condition: Callable[[], bool], what: str) -> float:
    """Seconds until ``condition``; RuntimeError after GIVE_UP_S."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > GIVE_UP_S:
            raise RuntimeError(f"{what}: not within {GIVE_UP_S:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - started


def measure(
    component: Component, how: signal.Signals, broker: LocalKafka | None, rounds: int
) -> list[float]:
    """Seconds from each restart to its first record handled, ``rounds`` restarts."""
    handled = component.publish()
    component.start()
    _wait(handled, f"{component.name}: the first record")
    times = []
    for _ in range(rounds):
        component.stop(how)
        if broker is not None:
            broker.down(echo=lambda _m: None)
            broker.up(echo=lambda _m: None)
        handled = component.publish()
        component.start()
        times.append(_wait(handled, f"{component.name}: the record after a restart"))
    component.stop(signal.SIGTERM)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="restarts per component and stop")
    parser.add_argument("--component", choices=["inbox", "router"], action="append")
    parser.add_argument("--stop", choices=["term", "kill"], action="append")
    parser.add_argument("--broker-restart", action="store_true")
    args = parser.parse_args()
    kinds = {"inbox": InboxComponent, "router": RouterComponent}
    with tempfile.TemporaryDirectory(prefix="ungebus-restart-") as tmp:
        port, controller = free_ports(2)
        broker = LocalKafka(home=Path(tmp) / "kafka", port=port, controller_port=controller,
                            heap="512m", secure=False)  # fmt: skip
        broker.up(echo=lambda _m: None)
        try:
            for name in args.component or ["inbox", "router"]:
                for stop in args.stop or ["term", "kill"]:
                    label = f"{name}-{stop}" + ("-broker" if args.broker_restart else "")
                    settings = Settings(
                        kafka_bootstrap_servers=broker.bootstrap_servers,
                        topic_prefix=f"{label}.",
                        var_dir=Path(tmp) / label,
                    )
                    ensure_topics(settings.kafka_config(), settings.topics.catalogue())
                    component = kinds[name](settings, Path(tmp) / f"{label}.log")
                    how = signal.SIGTERM if stop == "term" else signal.SIGKILL
                    try:
                        times = measure(
                            component, how, broker if args.broker_restart else None, args.rounds
                        )
                    except RuntimeError as exc:
                        print(f"{label}: {exc}; the end of its log:")
                        print(component.log.read_text(errors="replace")[-3000:])
                        continue
                    shown = ", ".join(f"{t:.1f}" for t in times)
                    print(f"{label}: restart to first record handled: {shown} s")
        finally:
            broker.down(echo=lambda _m: None)


if __name__ == "__main__":
    main()
