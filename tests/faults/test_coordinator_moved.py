"""The librdkafka bug that ``bus.confluent_fixes`` steps around (librdkafka #5040), shown on
the three-node cluster: a group's coordinator moves (its broker restarts), and the admin API's
read of the group's offsets crashes the process, where a handle of the group reads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from bus.settings import PROJECT_ROOT
from bus.topics import TopicSpec, ensure_topics
from bus.waiting import wait_until
from deploy.local.cluster import LocalCluster
from tests.support.offsets_reader import NO_ANSWER

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _coordinator(config: dict[str, str], group: str) -> int:
    admin = AdminClient(config)  # kept until the answer: a client gone leaves it unanswered
    return int(admin.describe_consumer_groups([group])[group].result(30).coordinator.id)


def _reader(way: str, config: dict[str, str], group: str, topic: str) -> subprocess.Popen[str]:
    reader = subprocess.Popen(
        [sys.executable, "-m", "tests.support.offsets_reader", way, group, topic],
        cwd=PROJECT_ROOT,
        env={**os.environ, "OFFSETS_READER_CONFIG": json.dumps(config)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "offset 7", f"{way}: no first answer"
    return reader


def test_the_admin_api_fails_where_the_group_handle_reads_on(
    kafka_cluster: LocalCluster,
) -> None:
    """Both readers cache the group's coordinator, then its broker restarts (leadership of the
    group's ``__consumer_offsets`` partition moves to another). Asked again, the old broker
    answers NOT_COORDINATOR: the admin API's process dies of SIGSEGV (librdkafka #5040) or, when
    the answer comes another way, its request is never answered; the group handle's reads the
    offset."""
    config = kafka_cluster.client_config()
    topic, group = f"coordinator-{uuid.uuid4().hex[:8]}", f"coordinator-{uuid.uuid4().hex[:8]}"
    ensure_topics(config, [TopicSpec(topic, partitions=1, replication_factor=3)])
    committer = Consumer({**config, "group.id": group})
    committer.commit(offsets=[TopicPartition(topic, 0, 7)], asynchronous=False)
    committer.close()
    before = _coordinator(config, group)
    readers = {way: _reader(way, config, group, topic) for way in ("admin", "consumer")}
    try:
        node = next(n for n in kafka_cluster.nodes if n.node_id == before)
        node.stop()
        node.start()
        wait_until(lambda: _coordinator(config, group) != before, 60, "another coordinator")
        answers = {
            way: reader.communicate("again\n", timeout=120) for way, reader in readers.items()
        }
    finally:
        for reader in readers.values():
            reader.kill()
    admin = readers["admin"].returncode
    print(f"\nthe admin API's reader: {'SIGSEGV' if admin == -11 else f'exit {admin}'}")
    assert admin in (-11, NO_ANSWER), (admin, answers["admin"])
    assert readers["consumer"].returncode == 0, answers["consumer"]
    assert answers["consumer"][0].strip() == "offset 7"
