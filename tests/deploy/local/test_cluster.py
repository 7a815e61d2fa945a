"""The local three-node KRaft cluster (deploy/local/cluster.py), as the fault suite and an
operator use it: its topics have three replicas and need two in sync, a node ``kill -9``'d
loses nothing a producer was told was written, the node started again rejoins, and
``ungebus local up --brokers 3|status|env|down`` run and stop it leaving no process."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from bus.ports import free_port_run
from bus.settings import Settings
from bus.topics import TopicSpec, ensure_topics, min_insync_replicas
from bus.topics_cli import catalogue
from bus.waiting import wait_until
from deploy.local.cluster import LocalCluster
from deploy.local.java import pid_alive
from deploy.local.readiness import registered_brokers
from deploy.local.settings import LocalKafkaSettings
from tests.support.harness import ungebus

RECORDS = 2000


# -- pure: how replication follows the cluster's size --------------------------------------
@pytest.mark.parametrize(("replicas", "in_sync"), [(1, 1), (2, 2), (3, 2), (5, 3)])
def test_a_record_is_acknowledged_once_a_majority_of_replicas_has_it(
    replicas: int, in_sync: int
) -> None:
    assert min_insync_replicas(replicas) == in_sync
    topic = TopicSpec("t", replication_factor=replicas).new_topic()
    assert topic.config["min.insync.replicas"] == str(in_sync)


def test_a_topics_own_min_insync_replicas_wins() -> None:
    topic = TopicSpec("t", replication_factor=3, config={"min.insync.replicas": "3"}).new_topic()
    assert topic.config["min.insync.replicas"] == "3"


def test_cluster_nodes_take_the_ports_after_the_settings_ports(tmp_path: Path) -> None:
    settings = LocalKafkaSettings(
        local_kafka_home=tmp_path, local_kafka_port=9092, local_kafka_controller_port=9093,
        local_kafka_brokers=3,
    )  # fmt: skip
    cluster = LocalCluster.from_settings(settings)
    assert cluster.bootstrap_servers == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    assert [n.broker.controller_port for n in cluster.nodes] == [9093, 9095, 9097]
    assert {n.broker.voters for n in cluster.nodes} == {
        "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
    }
    assert cluster.replication_factor == 3
    assert all(n.broker.security.home == cluster.home for n in cluster.nodes)
    assert cluster.client_env()["UNGEBUS_REPLICATION_FACTOR"] == "3"


# -- a real cluster -------------------------------------------------------------------------
def _partitions(config: dict[str, Any], topic: str) -> dict[int, tuple[list[int], list[int]]]:
    """partition -> (replicas, in-sync replicas)"""
    metadata = AdminClient(config).list_topics(topic, timeout=10).topics[topic]
    return {p.id: (list(p.replicas), list(p.isrs)) for p in metadata.partitions.values()}


def _min_insync(config: dict[str, Any], topic: str) -> str:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    admin = AdminClient(config)  # kept until the answer is in
    future = admin.describe_configs([resource])[resource]
    return str(future.result(timeout=30)["min.insync.replicas"].value)


def _settings_of(cluster: LocalCluster, **fields: Any) -> Settings:
    """Settings as a component on the cluster gets them (``ungebus local env``)."""
    login = {
        name.removeprefix("UNGEBUS_").lower(): value for name, value in cluster.client_env().items()
    }
    return Settings(
        **login,
        kafka_bootstrap_servers=cluster.bootstrap_servers,
        kafka_sasl_password=None,
        **fields,
    )


def test_the_bus_topics_get_three_replicas_two_in_sync(
    kafka_cluster: LocalCluster, tmp_path: Path
) -> None:
    config = kafka_cluster.client_config()
    assert registered_brokers(config) == 3
    settings = _settings_of(
        kafka_cluster, topic_prefix=f"cluster-{uuid.uuid4().hex[:8]}.", var_dir=tmp_path
    )
    assert settings.replication_factor == 3
    specs = catalogue(settings)[:3]  # what `ungebus topics create` creates, a few of them
    ensure_topics(settings.kafka_config(), specs)
    for topic in [spec.name for spec in specs]:
        for replicas, in_sync in _partitions(config, topic).values():
            assert sorted(replicas) == [1, 2, 3]
            assert sorted(in_sync) == [1, 2, 3]
        assert _min_insync(config, topic) == "2"
    # The group coordinator's topic, made while all three ran (the cluster's readiness).
    offsets = _partitions(config, "__consumer_offsets")
    assert offsets and all(len(replicas) == 3 for replicas, _ in offsets.values())
    assert _min_insync(config, "__consumer_offsets") == "2"


def test_a_node_killed_loses_nothing_acknowledged_and_rejoins(
    kafka_cluster: LocalCluster, unique: Callable[[str], str]
) -> None:
    config = kafka_cluster.client_config()
    topic = unique("killed")
    ensure_topics(config, [TopicSpec(topic, 3, replication_factor=3)])
    leader = AdminClient(config).list_topics(topic, timeout=10).topics[topic].partitions[0].leader
    victim = kafka_cluster.nodes[leader - 1]

    acknowledged: list[str] = []
    failed: list[str] = []

    def report(err: KafkaError | None, msg: Message) -> None:
        (failed if err else acknowledged).append(str(err) if err else msg.value().decode())

    producer = Producer({**config, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
    sent = [f"record-{i}" for i in range(RECORDS)]
    for i, value in enumerate(sent):
        producer.produce(topic, value.encode(), key=str(i % 17).encode(), on_delivery=report)
        producer.poll(0)
        if i == RECORDS // 2:  # the leader of partition 0 dies mid-stream
            victim.kill()
            assert victim.pid is None
    assert producer.flush(180) == 0
    assert failed == []
    assert sorted(acknowledged) == sorted(sent)

    read = _read_all(config, topic, len(sent))
    assert sorted(read) == sorted(sent)  # every one, none twice

    victim.start()
    assert victim.pid is not None
    wait_until(
        lambda: all(len(isr) == 3 for _, isr in _partitions(config, topic).values()),
        120,
        f"node {victim.node_id} back in every partition's in-sync replicas",
    )


def test_a_paused_node_says_so_and_resumes(kafka_cluster: LocalCluster) -> None:
    node = kafka_cluster.nodes[-1]
    pid = node.pid
    node.pause()
    try:
        assert node.is_paused and node.pid == pid  # paused, not gone
        assert f"pid {pid}, PAUSED" in kafka_cluster.status()
    finally:
        node.resume()
    assert not node.is_paused
    assert "PAUSED" not in kafka_cluster.status()
    kafka_cluster.await_registered()


def _read_all(config: dict[str, Any], topic: str, count: int) -> list[str]:
    consumer = Consumer(
        {**config, "group.id": f"reader-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    read: list[str] = []

    def more() -> bool:
        for msg in consumer.consume(500, timeout=1.0):
            if msg.error() is None:
                read.append(msg.value().decode())
        return len(read) >= count

    try:
        wait_until(more, 120, f"{count} records read from {topic}", every_s=0.0)
    finally:
        consumer.close()
    return read


# -- the operator's commands ----------------------------------------------------------------
def _ungebus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return ungebus(env, *args, timeout_s=300)  # it starts a cluster of its own


@pytest.mark.integration  # it starts its own cluster
def test_local_up_brokers_3_status_env_down(tmp_path: Path) -> None:
    first = free_port_run(6)
    env = {
        **os.environ,
        "UNGEBUS_LOCAL_KAFKA_HOME": str(tmp_path / "kafka"),
        "UNGEBUS_LOCAL_KAFKA_PORT": str(first),
        "UNGEBUS_LOCAL_KAFKA_CONTROLLER_PORT": str(first + 1),
        "UNGEBUS_LOCAL_KAFKA_START_TIMEOUT_S": "180",
    }
    env.pop("UNGEBUS_LOCAL_KAFKA_BROKERS", None)
    servers = ",".join(f"127.0.0.1:{first + 2 * i}" for i in range(3))
    pids: list[int] = []
    try:
        up = _ungebus(env, "local", "up", "--brokers", "3")
        assert up.returncode == 0, up.stderr
        assert f"up as a cluster of 3 nodes at {servers}" in up.stdout

        # Without --brokers: the commands act on what runs.
        status = _ungebus(env, "local", "status")
        assert status.returncode == 0, status.stderr
        for i in range(3):
            assert f"node {i + 1} at 127.0.0.1:{first + 2 * i}" in status.stdout
        pids = [int(pid) for pid in re.findall(r"pid (\d+)", status.stdout)]
        assert len(pids) == 3 and all(map(pid_alive, pids))
        assert "secured: SASL_SSL + SCRAM-SHA-512" in status.stdout

        variables = _ungebus(env, "local", "env")
        assert variables.returncode == 0, variables.stderr
        assert f"export KAFKA_BOOTSTRAP_SERVERS={servers}" in variables.stdout
        assert "export UNGEBUS_REPLICATION_FACTOR=3" in variables.stdout
    finally:
        down = _ungebus(env, "local", "down")
    assert down.returncode == 0, down.stderr
    assert "stopped (3 nodes)" in down.stdout
    assert not any(map(pid_alive, pids))
    stopped = _ungebus(env, "local", "status")
    assert stopped.returncode == 3 and "not running" in stopped.stdout
