"""The topic catalogue: every topic the bus uses, with its partitions and retention.

Kafka topics are created explicitly (the local broker has auto-creation off), so a typo in a
topic name fails loudly instead of creating a stray topic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.error import KafkaError, KafkaException

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 3
    replication_factor: int = 1
    config: dict[str, str] = field(default_factory=dict)

    def new_topic(self) -> NewTopic:
        return NewTopic(
            self.name,
            num_partitions=self.partitions,
            replication_factor=self.replication_factor,
            config=dict(self.config),
        )


def retention_days(days: int) -> dict[str, str]:
    return {"retention.ms": str(days * DAY_MS)}


def ensure_topics(admin_config: dict[str, Any], specs: Iterable[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; return the names created. Idempotent."""
    admin = AdminClient(admin_config)
    wanted = {spec.name: spec for spec in specs}
    existing = set(admin.list_topics(timeout=10).topics)
    missing = [spec.new_topic() for name, spec in wanted.items() if name not in existing]
    if not missing:
        return []
    created = []
    for name, future in admin.create_topics(missing, operation_timeout=30).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created
