"""The topic catalogue: every topic the bus uses, with its partitions and retention (each
topic's from its data class in the retention table, ``bus.retention``).

Kafka topics are created explicitly (the local broker has auto-creation off), so a typo in a
topic name fails loudly instead of creating a stray topic.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.error import KafkaError, KafkaException

from bus.access import KafkaAccessError
from bus.retention import RetentionError, RetentionTable, default_retention
from schemas.domain import KOMMUNEKODER, UNITS

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 3
    replication_factor: int = 1
    config: dict[str, str] = field(default_factory=dict)

    def new_topic(self) -> NewTopic:
        """The topic to create; ``min.insync.replicas`` follows its replication factor
        (:func:`min_insync_replicas`) unless its config says otherwise."""
        config = {"min.insync.replicas": str(min_insync_replicas(self.replication_factor))}
        return NewTopic(
            self.name,
            num_partitions=self.partitions,
            replication_factor=self.replication_factor,
            config={**config, **self.config},
        )


def min_insync_replicas(replication_factor: int) -> int:
    """How many replicas must have a record before an acks=all producer is told it is
    accepted: a majority of them (1 of 1, 2 of 3, 3 of 5), so losing any minority of the
    replicas loses nothing acknowledged, and a topic keeps taking records with one of three
    replicas down."""
    return replication_factor // 2 + 1


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
    created, refused = [], []
    for name, future in admin.create_topics(missing, operation_timeout=30).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() in _NOT_ALLOWED:
                refused.append(name)
            elif exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    if refused:
        raise _not_allowed_to_create(admin_config, refused)
    _wait_until_visible(admin, set(wanted))
    return created


_NOT_ALLOWED = (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED)


def _not_allowed_to_create(admin_config: dict[str, Any], names: list[str]) -> KafkaAccessError:
    """On a secured cluster only the admin creates topics: a component whose topics are not
    there (or that may not see them) says which, as whom, and what to run."""
    who = admin_config.get("sasl.username") or "ANONYMOUS"
    shown = ", ".join(sorted(names)[:5]) + (" ..." if len(names) > 5 else "")
    return KafkaAccessError(
        f"Kafka at {admin_config.get('bootstrap.servers')} does not let principal {who!r} "
        f"see or CREATE {shown}: create the topics as the admin (`ungebus topics create`) and "
        "apply the ACLs (`ungebus acl apply`)"
    )


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
    """Creation returns before every broker lists the topic with its partitions and their
    leaders; a client that subscribes in between ignores the topic until its next metadata
    refresh (minutes), and one that reads at once is told NOT_LEADER_FOR_PARTITION."""
    deadline = time.monotonic() + timeout_s
    while True:
        topics = admin.list_topics(timeout=10).topics
        ready = {n for n in names if n in topics and _has_leaders(topics[n])}
        if ready == names:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"topics not visible after {timeout_s:.0f} s: {sorted(names - ready)}"
            )
        time.sleep(0.1)


def _has_leaders(topic: Any) -> bool:
    """Listed with its partitions, each with a leader (a ``TopicMetadata``)."""
    partitions = topic.partitions.values()
    return (
        bool(partitions)
        and not topic.error
        and all(p.leader >= 0 and not p.error for p in partitions)
    )


# -- the catalogue --------------------------------------------------------------------------
# Topics keyed by subject pseudonym share one partition count: the router keeps a person's
# consent state in the partition of their events, the tracker a person's open tasks in the
# partition of their take-overs.
SUBJECT_PARTITIONS = 3

# The key store: compacted, so a person's keys stay until erased; an erased key (a tombstone)
# is cleaned out of the log soon: segments roll hourly, any dirt makes a segment cleanable, and
# the tombstone itself (a name, no key) goes a day later.
KEYS_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "segment.ms": str(60 * 60 * 1000),
    "min.cleanable.dirty.ratio": "0.01",
    "min.compaction.lag.ms": "0",
    "delete.retention.ms": str(24 * 60 * 60 * 1000),
}

# The kinds that travel on the ordered inbound topic (schema names).
INBOUND_EVENTS = ("dropout_notice", "release_planning", "handover", "school_absence_signal")
CONSENT_EVENTS = ("consent_granted", "consent_withdrawn")
ORDERED_EVENTS = (*INBOUND_EVENTS, *CONSENT_EVENTS)


@dataclass(frozen=True)
class Topics:
    """The topic names of one deployment. ``prefix`` namespaces them (tests use a unique one)."""

    prefix: str = ""

    @property
    def inbound_events(self) -> str:
        """Every accepted partner event and consent, in the order the bus accepted them.

        One topic keyed by subject pseudonym, so a person's events and consents are in one
        partition, in acceptance order, and the router decides them in that order (two topics
        read as one stream come in fetch order, not publish order). Only the bus's own
        connectors write it, after checking the sender; a partner that publishes to Kafka
        itself writes its own ``partner.<name>.events``, which the Kafka gateway checks and
        forwards here.
        """
        return f"{self.prefix}inbound.events"

    def partner_events(self, partner: str) -> str:
        """partner.<name>.events: what one partner publishes to Kafka directly (one topic per
        partner, so access can be granted per partner), forwarded by the Kafka gateway."""
        if not _PARTNER_NAME.fullmatch(partner):
            raise ValueError(f"partner name {partner!r} cannot be part of a topic name")
        return f"{self.prefix}partner.{partner}.events"

    @property
    def partner_events_prefix(self) -> str:
        return f"{self.prefix}partner."

    @property
    def audit_routing(self) -> str:
        """Every routing decision: who received what, on which basis."""
        return f"{self.prefix}audit.routing"

    @property
    def deadletter(self) -> str:
        """What could not be decoded or processed, with the reason and the original bytes."""
        return f"{self.prefix}deadletter"

    @property
    def keys(self) -> str:
        """The per-person data keys (``bus.keystore``), each wrapped with the master key; keyed
        ``<pseudonym>:<key id>``, compacted, a tombstone when a person is erased. Read and
        written only by the components that seal and unseal personal data."""
        return f"{self.prefix}keys"

    @property
    def erasures(self) -> str:
        """Every person erased (``ungebus erase``): pseudonym, when, why, by whom, keyed by the
        pseudonym like the inbound events, so the router and the tracker find the person in
        the partition their tables keep them in. The components delete what they hold of the
        person when they read it; the audit store keeps it as the erasure's audit record."""
        return f"{self.prefix}erasures"

    @property
    def operations(self) -> str:
        """What operators did to records with their tools (a dead letter revealed or retried:
        who, when, which letter), never the records' contents."""
        return f"{self.prefix}operations"

    def task_acks_of(self, kommunekode: str) -> str:
        """task-acks.<kommunekode>: one municipality's take-overs (the acknowledgements that
        close its tasks). One topic per municipality, so only its own inbox may write it and
        the tracker knows which municipality a take-over came from."""
        _check_unit(kommunekode, UNITS[0])
        return f"{self.prefix}task-acks.{kommunekode}"

    def all_task_acks(self) -> list[str]:
        """Every task-acks.<kommunekode> topic (what the handover tracker reads)."""
        return [self.task_acks_of(kommunekode) for kommunekode in KOMMUNEKODER]

    def task_acks_kommunekode(self, topic: str) -> str | None:
        """The municipality whose take-over topic this is; None if it is not one."""
        head = f"{self.prefix}task-acks."
        if not topic.startswith(head):
            return None
        kommunekode = topic.removeprefix(head)
        return kommunekode if kommunekode in KOMMUNEKODER else None

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

    def catalogue(self, retention: RetentionTable | None = None) -> list[TopicSpec]:
        """Every topic of the bus, with partitions and retention: each topic's ``retention.ms``
        is its data class's in the retention table (``streams/retention.toml``)."""
        table = retention or default_retention()
        kept = functools.partial(self._retention_config, table)
        specs = [
            TopicSpec(self.inbound_events, SUBJECT_PARTITIONS, config=kept(self.inbound_events)),
            TopicSpec(self.audit_routing, 3, config=kept(self.audit_routing)),
            TopicSpec(self.deadletter, 1, config=kept(self.deadletter)),
            TopicSpec(self.operations, 1, config=kept(self.operations)),
            TopicSpec(self.keys, 1, config={**kept(self.keys), **KEYS_TOPIC_CONFIG}),
            TopicSpec(self.erasures, SUBJECT_PARTITIONS, config=kept(self.erasures)),
        ]
        # Task topics are keyed by pseudonym too: the handover tracker keeps open tasks in a
        # table partitioned like the take-over acknowledgements.
        for kommunekode in KOMMUNEKODER:
            for name in (self.handovers(kommunekode), self.task_acks_of(kommunekode)):
                specs.append(TopicSpec(name, SUBJECT_PARTITIONS, config=kept(name)))
            for unit in UNITS:
                for name in (self.tasks(kommunekode, unit), self.escalations(kommunekode, unit)):
                    specs.append(TopicSpec(name, SUBJECT_PARTITIONS, config=kept(name)))
        return specs

    def partner_catalogue(
        self,
        partners: Iterable[str],
        replication_factor: int = 1,
        retention: RetentionTable | None = None,
    ) -> list[TopicSpec]:
        """The direct-publishing topics of these partners (a landing place, kept briefly)."""
        table = retention or default_retention()
        return [
            TopicSpec(
                name,
                SUBJECT_PARTITIONS,
                replication_factor,
                config=self._retention_config(table, name),
            )
            for name in (self.partner_events(p) for p in partners)
        ]

    def _retention_config(self, table: RetentionTable, name: str) -> dict[str, str]:
        """``retention.ms`` of the topic's data class; a class kept until erased sets none,
        and only a compacted topic (the keys) may be in one."""
        data_class = table.for_topic(name, self.prefix)
        if data_class.retention_ms is not None:
            return {"retention.ms": str(data_class.retention_ms)}
        if name != self.keys:
            raise RetentionError(
                f"{table.source}: topic {name.removeprefix(self.prefix)!r} is in class "
                f"{data_class.name!r}, kept {data_class.retention}: only the compacted keys "
                "topic may be kept without a time limit"
            )
        return {}


_PARTNER_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def _check_unit(kommunekode: str, unit: str) -> None:
    if kommunekode not in KOMMUNEKODER:
        raise ValueError(f"kommunekode {kommunekode!r} is not a municipality on this bus")
    if unit not in UNITS:
        raise ValueError(f"unit {unit!r} is not one of {UNITS}")
