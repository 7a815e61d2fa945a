"""Existing topics brought to the retention table: what differs, and setting it.

Creating a topic sets its retention once; a topic created before the table said otherwise (or
before the DPO changed it) keeps its old ``retention.ms`` until someone sets it. ``ungebus
topics create`` (as the admin) sets every differing one, ``ungebus topics check`` only lists
them. Only ``retention.ms`` is touched: partitions and other configs stay as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from bus.access import KafkaAccessError
from bus.topics import TopicSpec
from bus.waiting import wait_until

RETENTION_MS = "retention.ms"
_NOT_ALLOWED = (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED)
DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class RetentionChange:
    """A topic whose ``retention.ms`` on the broker is not its data class's."""

    topic: str
    on_broker: str
    wanted: str

    def __str__(self) -> str:
        return (
            f"{self.topic}: retention.ms {self.on_broker} ({_days(self.on_broker)}) on the "
            f"broker, {self.wanted} ({_days(self.wanted)}) in the retention table"
        )


def _days(ms: str) -> str:
    try:
        value = int(ms)
    except ValueError:
        return "?"
    if value < 0:
        return "no time limit"
    return f"P{value // DAY_MS}D" if value % DAY_MS == 0 else f"{value / DAY_MS:.2f} days"


def retention_differences(
    admin_config: dict[str, Any], specs: Iterable[TopicSpec]
) -> list[RetentionChange]:
    """Every existing topic among ``specs`` whose broker ``retention.ms`` differs from its
    spec's; topics not created yet and specs without one are left out."""
    admin = AdminClient(admin_config)
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = {
        spec.name: spec.config[RETENTION_MS]
        for spec in specs
        if spec.name in existing and RETENTION_MS in spec.config
    }
    if not wanted:
        return []
    on_broker = _retention_ms(admin, wanted)
    return [
        RetentionChange(name, on_broker[name], wanted[name])
        for name in sorted(wanted)
        if on_broker[name] != wanted[name]
    ]


def set_retention(
    admin_config: dict[str, Any], changes: Iterable[RetentionChange], timeout_s: float = 30.0
) -> None:
    """Set each topic's ``retention.ms`` to its table value (incrementally: nothing else), and
    wait until the broker describes them so: the controller has them at once, the broker that
    answers ``describe`` a moment later, and a ``check`` right after must not see the old."""
    changes = list(changes)
    resources = [
        ConfigResource(
            ResourceType.TOPIC,
            change.topic,
            incremental_configs=[
                ConfigEntry(
                    RETENTION_MS, change.wanted, incremental_operation=AlterConfigOpType.SET
                )
            ],
        )
        for change in changes
    ]
    if not resources:
        return
    admin = AdminClient(admin_config)
    for resource, future in admin.incremental_alter_configs(resources, request_timeout=30).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() not in _NOT_ALLOWED:
                raise
            who = admin_config.get("sasl.username") or "ANONYMOUS"
            raise KafkaAccessError(
                f"Kafka at {admin_config.get('bootstrap.servers')} does not let principal "
                f"{who!r} ALTER_CONFIGS of {resource.name}: set retention as the admin"
            ) from exc
    wanted = {change.topic: change.wanted for change in changes}
    wait_until(
        lambda: _retention_ms(admin, wanted) == wanted,
        timeout_s,
        "the broker to describe the retention it was given",
    )


def _retention_ms(admin: AdminClient, topics: Iterable[str]) -> dict[str, str]:
    """Each topic's ``retention.ms`` as the broker describes it."""
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in sorted(topics)]
    described = admin.describe_configs(resources, request_timeout=30)
    found = {}
    for resource, future in described.items():
        entry = future.result().get(RETENTION_MS)
        found[resource.name] = entry.value if entry is not None else ""
    return found
