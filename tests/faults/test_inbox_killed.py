"""F5: the inbox ``kill -9``'d between storing tasks and committing their offsets, and between
Kafka taking a caseworker's take-over and the database recording it: each task stored once,
each take-over published once. On the three-node cluster, the inbox on PostgreSQL.

The kills land in those windows every time through fail points (``bus.failpoints``): the
process sends itself SIGKILL there. The load is what the router writes, task records on
``tasks.161.youth_unit`` acknowledged by the cluster (acks=all); the router itself is in F1-F3.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

import schemas
from bus.failpoints import ENV as FAILPOINTS
from bus.ports import free_ports
from bus.settings import PROJECT_ROOT
from bus.topics import ensure_topics
from bus.waiting import wait_until
from consumers.inbox.caseworkers import Caseworker, add_account
from consumers.inbox.settings import InboxSettings
from consumers.inbox.store import TaskStore, connect
from deploy.local.cluster import LocalCluster
from tests.support.fault_load import cluster_env, cluster_login
from tests.support.inbox_harness import person, read_all, routed_task, task_rows

pytestmark = [pytest.mark.integration, pytest.mark.faults]

TASKS = 1200
FEED_KILLS = 4
ACK_TIMEOUT_S = 3.0
STAFF, PASSWORD = "yu-5", "correct horse battery"


@pytest.fixture
def settings(kafka_cluster: LocalCluster, postgres_url: str, tmp_path: Path) -> InboxSettings:
    settings = InboxSettings(
        **cluster_login(kafka_cluster),
        topic_prefix=f"f5-{os.urandom(4).hex()}.",
        var_dir=tmp_path / "var",
        inbox_kommunekode="161",
        inbox_units=("youth_unit",),
        inbox_database_url=postgres_url,
        inbox_ack_timeout_s=ACK_TIMEOUT_S,
    )
    ensure_topics(settings.kafka_config(), settings.topics.catalogue())
    return settings


class InboxProcess:
    """``ungebus inbox`` as its own process, so a fail point's SIGKILL kills it alone."""

    def __init__(self, settings: InboxSettings, env: dict[str, str], logs: Path) -> None:
        self.settings = settings
        self._env = env
        self._logs = logs
        self.runs = 0
        (self.port,) = free_ports(1)
        self.url = f"http://127.0.0.1:{self.port}"

    @contextmanager
    def running(self, failpoints: str = "") -> Iterator[subprocess.Popen[bytes]]:
        self.runs += 1
        env = {**self._env, "UNGEBUS_INBOX_PORT": str(self.port), FAILPOINTS: failpoints}
        with (self._logs / f"inbox-{self.runs}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "bus", "inbox"],
                env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                wait_until(lambda: process.poll() is not None or _up(self.url), 120,
                           f"inbox run {self.runs} up")  # fmt: skip
                yield process
            finally:
                if process.poll() is None:
                    process.terminate()
                    process.wait(30)

    def killed(self, process: subprocess.Popen[bytes], what: str, timeout_s: float = 120) -> None:
        """Wait for the fail point's SIGKILL."""
        wait_until(lambda: process.poll() is not None, timeout_s, what)
        assert process.returncode == -9, (process.returncode, self._log())

    def _log(self) -> str:
        return (self._logs / f"inbox-{self.runs}.log").read_text(errors="replace")[-3000:]


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _publish_tasks(settings: InboxSettings, count: int) -> list[dict[str, Any]]:
    """``count`` routed tasks on tasks.161.youth_unit, each acknowledged by the cluster."""
    tasks = [routed_task(person(5000 + n)) for n in range(count)]
    producer = Producer(settings.producer_config())
    failed: list[object] = []
    for task in tasks:
        producer.produce(
            settings.topics.tasks("161", "youth_unit"),
            key=task["subject_pseudonym"].encode(),
            value=schemas.encode("routed_task", task),
            on_delivery=lambda err, _m: err is not None and failed.append(err),
        )
        producer.poll(0)
    assert producer.flush(60) == 0 and failed == [], failed
    return tasks


def _committed(settings: InboxSettings) -> int:
    """Offsets the inbox's group has committed on its task topic, summed over partitions."""
    topic = settings.topics.tasks("161", "youth_unit")
    consumer = Consumer(settings.consumer_config(settings.group_id))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return sum(max(tp.offset, 0) for tp in committed)
    finally:
        consumer.close()


def _take_over(url: str, token: str, task_id: str) -> httpx.Response | None:
    """The caseworker's take-over; None when the inbox died before it answered."""
    try:
        return httpx.post(
            f"{url}/api/tasks/{task_id}/take-over",
            headers={"Authorization": f"Bearer {token}"},
            json={"note": "phoned"},
            timeout=30,
        )
    except httpx.HTTPError:
        return None


def _taken_over(settings: InboxSettings, task_id: str) -> bool:
    engine = connect(settings.database_url)
    try:
        found = TaskStore(engine).task("161", "youth_unit", task_id)
    finally:
        engine.dispose()
    return found is not None and found.take_over is not None


def test_f5_the_inbox_killed_mid_batch_and_mid_take_over_stores_and_publishes_once(
    settings: InboxSettings, kafka_cluster: LocalCluster, tmp_path: Path
) -> None:
    env = cluster_env(kafka_cluster, settings, UNGEBUS_INBOX_DATABASE_URL=settings.database_url,
                      UNGEBUS_INBOX_UNITS="youth_unit",
                      UNGEBUS_INBOX_ACK_TIMEOUT_S=str(ACK_TIMEOUT_S),
                      UNGEBUS_INBOX_DEMO_ACCOUNT="false")  # fmt: skip
    settings.var_dir.mkdir(parents=True)
    token = add_account(
        settings.users_file, Caseworker(STAFF, "161", "youth_unit"), PASSWORD, api_token=True
    )
    assert token is not None
    tasks = _publish_tasks(settings, TASKS)
    inbox = InboxProcess(settings, env, tmp_path)

    # The feed: killed FEED_KILLS times after a batch is stored and before it is committed.
    ahead: list[int] = []
    for n in range(FEED_KILLS):
        with inbox.running(f"inbox.feed.stored={n % 3 + 1}") as process:
            inbox.killed(process, f"the fail point after a stored batch (kill {n + 1})")
        stored, committed = sum(task_rows(settings).values()), _committed(settings)
        ahead.append(stored - committed)

    # A take-over killed after Kafka took it, and one killed before it was published.
    after_kafka, before_kafka, plain = (t["task_id"] for t in tasks[:3])
    with inbox.running("inbox.take_over.published=1") as process:
        wait_until(lambda: {after_kafka, before_kafka, plain} <= set(task_rows(settings)), 120,
                   "the tasks to take over stored")  # fmt: skip
        assert _take_over(inbox.url, token, after_kafka) is None
        inbox.killed(process, "the fail point after the take-over reached Kafka")
    with inbox.running("inbox.take_over.noted=1") as process:
        assert _take_over(inbox.url, token, before_kafka) is None
        inbox.killed(process, "the fail point before the take-over was published")

    with inbox.running() as process:
        # The caseworker tries the first one again: told to wait, then told it is theirs.
        retried = wait_until(lambda: _answered(_take_over(inbox.url, token, after_kafka)), 60,
                             "the retried take-over answered")  # fmt: skip
        answer = _take_over(inbox.url, token, plain)
        assert answer is not None and answer.status_code == 200, answer
        wait_until(lambda: sum(task_rows(settings).values()) >= TASKS, 300, "every task stored")
        wait_until(lambda: _taken_over(settings, before_kafka), 60,
                   "the take-over noted before a kill settled by the restarted inbox")  # fmt: skip
        assert process.poll() is None

    rows = task_rows(settings)
    published = Counter(
        s.record["task_id"] for s in read_all(settings, settings.acks_topic, timeout_s=60)
    )
    print(f"\nF5: {TASKS} tasks acknowledged by Kafka; inbox killed {FEED_KILLS} times between "
          f"its database and its commit (tasks stored ahead of the commit at each kill: "
          f"{ahead}) and twice mid take-over; {len(rows)} tasks stored, "
          f"{sum(c - 1 for c in rows.values())} twice; take-overs published "
          f"{dict(published)}; retry answered {retried}")  # fmt: skip
    assert all(a > 0 for a in ahead), ahead  # each kill fell between storing and committing
    assert set(rows) == {t["task_id"] for t in tasks}
    assert set(rows.values()) == {1}
    assert published == {after_kafka: 1, before_kafka: 1, plain: 1}
    assert all(_taken_over(settings, t) for t in (after_kafka, before_kafka, plain))


def _answered(response: httpx.Response | None) -> int | None:
    """The status of a retry once it is not "in progress" (503 while the take-over settles)."""
    if response is None or response.status_code == 503:
        return None
    assert response.status_code == 200, response.text
    return response.status_code
