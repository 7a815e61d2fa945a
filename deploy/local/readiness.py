"""When a freshly started broker is ready for the bus: not when it accepts TCP, not even when it
answers metadata, but once an idempotent producer gets its producer id.

A KRaft broker hands out producer ids from blocks it asks the controller for; until the first
block arrives it answers ``InitProducerId`` with COORDINATOR_LOAD_IN_PROGRESS, and every
idempotent producer (the connectors', acks=all) waits. On a loaded machine that took longer
than a connector's ack timeout, so the first partner events after ``local up`` were answered
503. librdkafka reports its idempotence state in its statistics (``eos.idemp_state``), which
needs no topic to observe.

A local cluster (deploy/local/cluster.py) is ready once every node has registered with the
controller quorum, producer ids are handed out, and the group coordinator's topic exists with
all its replicas: created while every node runs, so a group formed while one is down (the
fault suite's) still finds its coordinator.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from bus.waiting import within


def answers_metadata(config: dict[str, str]) -> bool:
    """True once the broker answers a metadata request (not merely accepts TCP)."""
    host, port = config["bootstrap.servers"].split(",")[0].rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            pass
    except OSError:
        return False
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({**config, "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=2)
    except Exception:
        return False
    return bool(metadata.brokers)


def hands_out_producer_ids(config: dict[str, str], timeout_s: float) -> bool:
    """Whether an idempotent producer got its producer id within ``timeout_s`` seconds."""
    from confluent_kafka import Producer

    states: list[str] = []

    def on_stats(raw: str) -> None:
        stats: dict[str, Any] = json.loads(raw)
        states.append(str(stats.get("eos", {}).get("idemp_state", "")))

    producer = Producer(
        {
            **config,
            "enable.idempotence": True,
            "statistics.interval.ms": 100,
            "stats_cb": on_stats,
            "log_level": 0,
        }
    )

    def assigned() -> bool:
        producer.poll(0.1)  # serves the statistics callback
        return bool(states) and states[-1] == "Assigned"

    try:
        return within(assigned, timeout_s, every_s=0.0)
    finally:
        producer.flush(0)


def registered_brokers(config: dict[str, str]) -> int:
    """How many brokers the cluster's metadata lists (0 when nobody answers)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({**config, "log_level": 0})
    try:
        return len(admin.list_topics(timeout=2).brokers)
    except Exception:
        return 0


def group_coordinator_ready(config: dict[str, str], replicas: int) -> bool:
    """Whether the group coordinator's topic (``__consumer_offsets``) exists, every partition
    with a leader and ``replicas`` in sync; asking for a coordinator creates it."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({**config, "log_level": 0})
    try:
        for future in admin.describe_consumer_groups(["ungebus-readiness"]).values():
            future.result(timeout=5)
    except Exception:
        pass  # "no such group", or the coordinator is not there yet: the topic tells
    try:
        topic = admin.list_topics("__consumer_offsets", timeout=2).topics["__consumer_offsets"]
    except Exception:
        return False
    partitions = list(topic.partitions.values())
    return (
        topic.error is None
        and bool(partitions)
        and all(p.leader >= 0 and len(p.isrs) >= replicas for p in partitions)
    )
