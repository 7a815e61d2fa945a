"""Helpers for the inbox tests (integration and browser); no tests here.

The router is simulated the way the contract says: routed_task records, Avro-encoded, on
``tasks.<kommunekode>.<unit>``, keyed by the subject pseudonym, with a ``traceparent`` header.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from sqlalchemy import create_engine, text

import schemas
from bus import waiting
from bus.topics import ensure_topics
from consumers.inbox.caseworkers import Caseworker, add_account
from consumers.inbox.service import BackgroundServer, Inbox, inbox_topics
from consumers.inbox.settings import InboxSettings
from schemas.synthetic import synthetic_cpr

T = TypeVar("T")
KOMMUNEKODE = "161"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def inbox_settings(
    kafka_bootstrap: str, unique: Callable[[str], str], var_dir: Path, **overrides: Any
) -> InboxSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka_bootstrap,
        "topic_prefix": unique("t") + ".",
        "var_dir": var_dir,
        "inbox_kommunekode": KOMMUNEKODE,
        "inbox_units": ("youth_unit", "jobcentre"),
        "inbox_ack_timeout_s": 10.0,
        **overrides,
    }
    settings = InboxSettings(**values)
    wanted = inbox_topics(settings)
    ensure_topics(
        settings.kafka_config(), [t for t in settings.topics.catalogue() if t.name in wanted]
    )
    return settings


@dataclass(frozen=True)
class Person:
    name: str
    cpr: str
    pseudonym: str


def person(seed: int, name: str = "Freja Testesen") -> Person:
    """A synthetic young person: CPR-shaped with a real birth date, never a real one."""
    cpr = synthetic_cpr(random.Random(seed), dt.date(2009, 3, 14))
    return Person(name, cpr, uuid.uuid5(uuid.NAMESPACE_OID, cpr).hex * 2)


def routed_task(
    who: Person,
    *,
    unit: str = "youth_unit",
    kommunekode: str = KOMMUNEKODE,
    due_in: dt.timedelta = dt.timedelta(days=3),
    disclose_identity: bool = True,
    priority: str = "high",
    task_id: str | None = None,
) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    details = {
        "envelope.source": '{"id": "101234", "kind": "institution"}',
        "institution_name": '"Glostrup Gymnasium"',
        "status": '"dropped_out"',
        "left_on": '"2026-11-20"',
    }
    if disclose_identity:
        details["envelope.subject.name"] = f'"{who.name}"'
        details["envelope.subject.cpr"] = f'"{who.cpr}"'
    event_id = str(uuid.uuid4())
    return {
        "task_id": task_id or f"task-{event_id}",
        "event_id": event_id,
        "event_type": "dk.ungebus.dropout_notice.v1",
        "unit": unit,
        "kommunekode": kommunekode,
        "basis": {"kind": "statute", "id": "kui_12c", "citation": "KUI-loven § 12 c"},
        "consent_id": None,
        "due_by": now + due_in,
        "priority": priority,
        "policy_version": "2026-11-27.1",
        "subject_pseudonym": who.pseudonym,
        "details": details,
        "sealed_details": None,
        "routed_at": now,
    }


def escalation(task: dict[str, Any], level: int = 1) -> dict[str, Any]:
    return {
        "task_id": task["task_id"],
        "event_id": task["event_id"],
        "event_type": task["event_type"],
        "unit": task["unit"],
        "kommunekode": task["kommunekode"],
        "subject_pseudonym": task["subject_pseudonym"],
        "due_by": task["due_by"],
        "escalated_at": dt.datetime.now(dt.UTC).replace(microsecond=0),
        "escalated_to": "unit_lead",
        "level": level,
        "reason": "not taken over 2 working days after due",
        "notify_kommunekode": None,
    }


def publish_raw(
    settings: InboxSettings, topic: str, value: bytes, key: bytes | None, traceparent: str | None
) -> None:
    producer = Producer(settings.producer_config())
    headers = [("traceparent", traceparent.encode())] if traceparent else []
    errors: list[object] = []
    producer.produce(
        topic, key=key, value=value, headers=headers, on_delivery=lambda err, _m: errors.append(err)
    )
    assert producer.flush(30) == 0, "Kafka did not take the record in time"
    assert errors == [None], f"Kafka refused the record: {errors}"


def publish(
    settings: InboxSettings,
    topic: str,
    name: str,
    record: dict[str, Any],
    traceparent: str | None = TRACEPARENT,
) -> None:
    key = record["subject_pseudonym"].encode()
    publish_raw(settings, topic, schemas.encode(name, record), key, traceparent)


def publish_task(settings: InboxSettings, task: dict[str, Any]) -> None:
    topic = settings.topics.tasks(task["kommunekode"], task["unit"])
    publish(settings, topic, "routed_task", task)


@dataclass(frozen=True)
class Seen:
    key: bytes | None
    name: str
    record: dict[str, Any]
    headers: dict[str, bytes]


def read_all(settings: InboxSettings, topic: str, timeout_s: float = 30.0) -> list[Seen]:
    """Every record on ``topic`` right now, decoded (read up to each partition's end)."""
    consumer = Consumer(
        settings.consumer_config(f"reader-{uuid.uuid4().hex}", **{"enable.partition.eof": True})
    )
    try:
        partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        done = {p for p, end in ends.items() if end == 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        seen: list[Seen] = []
        deadline = time.monotonic() + timeout_s
        while done != set(partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for message in consumer.consume(num_messages=100, timeout=0.2):
                error = message.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    done.add(message.partition())
                    continue
                name, _version, record = schemas.decode(message.value())
                headers = {k: v for k, v in message.headers() or [] if isinstance(v, bytes)}
                seen.append(Seen(message.key(), name, record, headers))
                if message.offset() + 1 >= ends[message.partition()]:
                    done.add(message.partition())
        return seen
    finally:
        consumer.close()


def wait_until(
    condition: Callable[[], T | None], what: str, timeout_s: float = 30.0, every_s: float = 0.05
) -> T:
    """The first truthy value of ``condition()``; fail with ``what`` after ``timeout_s``."""
    return cast(T, waiting.wait_until(condition, timeout_s, what, every_s=every_s))


@dataclass
class RunningInbox:
    inbox: Inbox
    url: str

    @property
    def settings(self) -> InboxSettings:
        return self.inbox.settings

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)

    def add_caseworker(
        self, staff_id: str, unit: str, password: str = "correct horse battery"
    ) -> str:
        """A caseworker of ``unit``; returns their API token."""
        token = add_account(
            self.settings.users_file,
            Caseworker(staff_id, self.settings.inbox_kommunekode, unit),
            password,
            api_token=True,
        )
        assert token is not None
        return token


@contextmanager
def running_inbox(settings: InboxSettings) -> Iterator[RunningInbox]:
    """The inbox in this process: its feed in a thread, uvicorn on a free port in another."""
    inbox = Inbox.open(settings)
    inbox.start_feed()
    server = BackgroundServer(inbox.app)
    try:
        yield RunningInbox(inbox, server.start())
    finally:
        server.stop()
        inbox.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client: httpx.Client, staff_id: str, password: str) -> str:
    """Sign in through the form; return the session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login", data={"staff_id": staff_id, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/tasks").text)


def api_tasks(client: httpx.Client, token: str) -> list[dict[str, Any]]:
    response = client.get("/api/tasks", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks


def task_rows(settings: InboxSettings) -> dict[str, int]:
    """task id -> how many rows: straight from the database, not through the store."""
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as db:
            rows = db.execute(text("SELECT task_id, count(*) FROM tasks GROUP BY task_id"))
            return {task_id: count for task_id, count in rows}
    finally:
        engine.dispose()
