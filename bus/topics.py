"""The topic catalogue: every topic the bus uses, with its partitions and retention.

Kafka topics are created explicitly (the local broker has auto-creation off), so a typo in a
topic name fails loudly instead of creating a stray topic.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.error import KafkaError, KafkaException

from schemas.domain import KOMMUNEKODER, UNITS

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
    _wait_until_visible(admin, set(wanted))
    return created


def delete_topics(admin_config: dict[str, Any], prefix: str) -> list[str]:
    """Delete every topic whose name starts with ``prefix`` (a benchmark's or a test's own,
    faust's internal ones included); return the names deleted."""
    if not prefix:
        raise ValueError("a prefix is needed: this deletes every topic that starts with it")
    admin = AdminClient(admin_config)
    names = [name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix)]
    if not names:
        return []
    for future in admin.delete_topics(names, operation_timeout=30).values():
        future.result()
    return sorted(names)


def _wait_until_visible(admin: AdminClient, names: set[str], timeout_s: float = 30.0) -> None:
    """Creation returns before every broker lists the topic with its partitions; a client
    that subscribes in between ignores the topic until its next metadata refresh (minutes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        topics = admin.list_topics(timeout=10).topics
        ready = {n for n in names if n in topics and topics[n].partitions and not topics[n].error}
        if ready == names:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"topics not visible after {timeout_s:.0f} s: {sorted(names - ready)}"
            )
        time.sleep(0.1)


# -- the catalogue --------------------------------------------------------------------------
# Inbound and consent topics are keyed by subject pseudonym and must have the same partition
# count: the router joins an event with the consent state held for the same partition.
SUBJECT_PARTITIONS = 3


INBOUND_EVENTS = ("dropout_notice", "release_planning", "handover", "school_absence_signal")


@dataclass(frozen=True)
class Topics:
    """The topic names of one deployment. ``prefix`` namespaces them (tests use a unique one)."""

    prefix: str = ""

    @property
    def consent(self) -> str:
        """Consent granted/withdrawn, keyed by subject pseudonym."""
        return f"{self.prefix}consent.events"

    @property
    def audit_routing(self) -> str:
        """Every routing decision: who received what, on which basis."""
        return f"{self.prefix}audit.routing"

    @property
    def deadletter(self) -> str:
        """What could not be decoded or processed, with the reason and the original bytes."""
        return f"{self.prefix}deadletter"

    @property
    def task_acks(self) -> str:
        """Task taken over: a unit's acknowledgement that closes a task."""
        return f"{self.prefix}task-acks"

    def inbound(self, event: str) -> str:
        """inbound.<event>: partner events of one kind, as the connectors accepted them."""
        if event not in INBOUND_EVENTS:
            raise ValueError(f"no inbound topic for event {event!r}; known: {INBOUND_EVENTS}")
        return f"{self.prefix}inbound.{event}"

    def tasks(self, kommunekode: str, unit: str) -> str:
        """tasks.<kommunekode>.<unit>: what one unit of one municipality must take over."""
        _check_unit(kommunekode, unit)
        return f"{self.prefix}tasks.{kommunekode}.{unit}"

    def handovers(self, kommunekode: str) -> str:
        """handovers.<kommunekode>: whether the young people this municipality handed over
        have been taken over yet (it keeps responsibility until they have)."""
        _check_unit(kommunekode, UNITS[0])
        return f"{self.prefix}handovers.{kommunekode}"

    def all_tasks(self) -> list[str]:
        """Every tasks.<kommunekode>.<unit> topic (what the handover tracker reads)."""
        return [self.tasks(kommunekode, unit) for kommunekode in KOMMUNEKODER for unit in UNITS]

    def escalations(self, kommunekode: str, unit: str) -> str:
        """escalations.<kommunekode>.<unit>: tasks nobody took over in time, for the lead."""
        _check_unit(kommunekode, unit)
        return f"{self.prefix}escalations.{kommunekode}.{unit}"

    def catalogue(self) -> list[TopicSpec]:
        """Every topic of the bus, with partitions and retention."""
        specs = [
            TopicSpec(self.inbound(e), SUBJECT_PARTITIONS, config=retention_days(30))
            for e in INBOUND_EVENTS
        ]
        specs += [
            # Consent is state: never expire it by time.
            TopicSpec(self.consent, SUBJECT_PARTITIONS, config={"retention.ms": "-1"}),
            TopicSpec(self.audit_routing, 3, config=retention_days(5 * 365)),
            TopicSpec(self.deadletter, 1, config=retention_days(90)),
            TopicSpec(self.task_acks, SUBJECT_PARTITIONS, config=retention_days(365)),
        ]
        # Task topics are keyed by pseudonym too: the handover tracker keeps open tasks in a
        # table partitioned like the take-over acknowledgements.
        year = retention_days(365)
        for kommunekode in KOMMUNEKODER:
            specs.append(TopicSpec(self.handovers(kommunekode), SUBJECT_PARTITIONS, config=year))
            for unit in UNITS:
                for name in (self.tasks(kommunekode, unit), self.escalations(kommunekode, unit)):
                    specs.append(TopicSpec(name, SUBJECT_PARTITIONS, config=year))
        return specs


def _check_unit(kommunekode: str, unit: str) -> None:
    if kommunekode not in KOMMUNEKODER:
        raise ValueError(f"kommunekode {kommunekode!r} is not a municipality on this bus")
    if unit not in UNITS:
        raise ValueError(f"unit {unit!r} is not one of {UNITS}")
