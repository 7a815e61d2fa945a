"""Try every operation as one client on a secured broker and write down what it was let do.

One producer, one admin client and one consumer per group for a client, each reused over every
topic; every wait is bounded by a condition (every record answered, every topic resolved, or an
error that ends the client's chances: authentication failed, the group refused, a fatal one).
Nothing is assumed: a record counts as written when the broker acknowledged it, as read when it
arrived; anything else is a deny with the error the client got.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer
from confluent_kafka import TopicCollection, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
)
from confluent_kafka.admin import ResourceType as KafkaResourceType

from bus.waiting import within
from tests.support.acl_observations import CLUSTER_TARGET, Check, Observation, Op

_ANY = cast(str, None)  # a filter's "any" (the stubs say str)
PROBE_PRINCIPAL = "User:matrix-probe"  # the ACL a client tries to create names nobody of ours
WAIT_S = 30.0
_ENDS_THE_CLIENT = {
    KafkaError._AUTHENTICATION,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._SSL,
}
_ENDS_THE_GROUP = {KafkaError.GROUP_AUTHORIZATION_FAILED}


def _name(error: KafkaError | None) -> str:
    return "ok" if error is None else error.name()


@dataclass
class _Errors:
    """The client's error callback: what it reported, and whether it can go on at all."""

    seen: list[KafkaError] = field(default_factory=list)

    def __call__(self, error: KafkaError) -> None:
        self.seen.append(error)

    @property
    def final(self) -> KafkaError | None:
        return next((e for e in self.seen if e.code() in _ENDS_THE_CLIENT or e.fatal()), None)


@dataclass(frozen=True)
class Client:
    """One client: who it says it is (``label``) and how it connects (``config``)."""

    label: str
    config: dict[str, Any]

    def _conf(self, errors: _Errors, **extra: Any) -> dict[str, Any]:
        return {**self.config, "error_cb": errors, **extra}

    # -- produce ----------------------------------------------------------------------------
    def produce(self, topics: Sequence[str]) -> list[Observation]:
        errors = _Errors()
        producer = Producer(self._conf(errors, **{
            "enable.idempotence": True, "acks": "all", "message.timeout.ms": int(WAIT_S * 1000),
        }))  # fmt: skip
        answers: dict[str, KafkaError | None] = {}
        for topic in topics:
            producer.produce(topic, key=self.label.encode(), value=b"acl matrix probe",
                             on_delivery=lambda err, _msg, t=topic: answers.__setitem__(t, err))  # fmt: skip

        def answered() -> bool:
            producer.poll(0.1)
            return len(answers) == len(topics) or errors.final is not None

        within(answered, WAIT_S, every_s=0.05)
        producer.purge()
        producer.flush(0)
        final = errors.final
        return [
            Observation(Check(self.label, Op.PRODUCE, t), t in answers and answers[t] is None,
                        _name(answers[t]) if t in answers else _name(final) if final else
                        "no answer")  # fmt: skip
            for t in topics
        ]

    # -- consume ----------------------------------------------------------------------------
    def consume(self, topics: Sequence[str], op: Op, group: str | None) -> list[Observation]:
        """``op`` READ: assign every topic's partition 0 from the beginning (no group);
        CONSUME_*: subscribe to them all in ``group``. Each topic holds a record already."""
        errors = _Errors()
        extra: dict[str, Any] = {"enable.auto.commit": False, "auto.offset.reset": "earliest",
                                 "enable.partition.eof": False}  # fmt: skip
        extra["group.id"] = group if group is not None else f"matrix-assign-{self.label}"
        consumer = Consumer(self._conf(errors, **extra))
        got: dict[str, str] = {}
        refused: list[str] = []
        if group is None:
            consumer.assign([TopicPartition(t, 0, OFFSET_BEGINNING) for t in topics])
        else:
            consumer.subscribe(list(topics))

        def resolved() -> bool:
            msg = consumer.poll(0.2)
            if msg is not None:
                error = msg.error()
                if error is None:
                    got.setdefault(msg.topic() or "", "ok")
                elif error.code() in _ENDS_THE_GROUP:
                    refused.append(error.name())
                elif msg.topic():
                    got.setdefault(msg.topic() or "", error.name())
                elif error.code() in _ENDS_THE_CLIENT or error.fatal():
                    refused.append(error.name())
            return set(topics) <= set(got) or bool(refused) or errors.final is not None

        try:
            within(resolved, WAIT_S, every_s=0.01)
        finally:
            consumer.close()
        why = refused[0] if refused else _name(errors.final) if errors.final else "nothing came"
        return [
            Observation(Check(self.label, op, t, group), got.get(t) == "ok", got.get(t, why))
            for t in topics
        ]

    # -- admin ------------------------------------------------------------------------------
    def admin(
        self, topics: Sequence[str], fresh: Sequence[str], doomed: Sequence[str]
    ) -> list[Observation]:
        """Describe ``topics`` and their configs; create ``fresh`` (validate only: nothing is
        made), delete ``doomed`` (a twin per topic, in its family's namespace, so that a wrong
        allow takes nothing from the other checks); create an ACL, read the ACLs."""
        errors = _Errors()
        admin = AdminClient(self._conf(errors))
        timeout = {"request_timeout": WAIT_S}
        seen: list[Observation] = []

        def record(check: Check, future: Any) -> None:
            try:
                future.result()
                seen.append(Observation(check, True, "ok"))
            except KafkaException as exc:
                error = exc.args[0]
                name = error.name() if isinstance(error, KafkaError) else str(exc)
                seen.append(Observation(check, False, name))

        described = admin.describe_topics(TopicCollection(list(topics)), **timeout)
        for topic, future in described.items():
            record(Check(self.label, Op.DESCRIBE, topic), future)
        resources = [ConfigResource(KafkaResourceType.TOPIC, t) for t in topics]
        for resource, future in admin.describe_configs(resources, **timeout).items():
            record(Check(self.label, Op.DESCRIBE_CONFIGS, resource.name), future)
        new = [NewTopic(t, num_partitions=1, replication_factor=1) for t in fresh]
        created = admin.create_topics(new, validate_only=True, operation_timeout=WAIT_S, **timeout)
        for topic, future in created.items():
            record(Check(self.label, Op.CREATE, topic), future)
        for topic, future in admin.delete_topics(list(doomed), operation_timeout=WAIT_S,
                                                 **timeout).items():  # fmt: skip
            record(Check(self.label, Op.DELETE, topic), future)
        probe = AclBinding(KafkaResourceType.TOPIC, "matrix-probe", ResourcePatternType.LITERAL,
                           PROBE_PRINCIPAL, "*", AclOperation.READ, AclPermissionType.ALLOW)  # fmt: skip
        for future in admin.create_acls([probe], **timeout).values():
            record(Check(self.label, Op.CREATE_ACL, CLUSTER_TARGET), future)
        record(Check(self.label, Op.DESCRIBE_ACLS, CLUSTER_TARGET),
               admin.describe_acls(_every_acl(), **timeout))  # fmt: skip
        return seen


def _every_acl() -> AclBindingFilter:
    return AclBindingFilter(KafkaResourceType.ANY, _ANY, ResourcePatternType.ANY, _ANY, _ANY,
                            AclOperation.ANY, AclPermissionType.ANY)  # fmt: skip


def writers(config: dict[str, Any], topics: Iterable[str]) -> dict[str, set[str]]:
    """Who wrote to each topic (the records' keys), read by ``config``'s client (the admin)
    from the beginning to the end offsets."""
    topics = list(topics)
    consumer = Consumer({**config, "group.id": "matrix-audit", "enable.auto.commit": False,
                         "enable.partition.eof": True})  # fmt: skip
    found: dict[str, set[str]] = {t: set() for t in topics}
    ends = set()
    consumer.assign([TopicPartition(t, 0, OFFSET_BEGINNING) for t in topics])

    def drained() -> bool:
        msg = consumer.poll(0.2)
        if msg is not None:
            error = msg.error()
            if error is None:
                found[msg.topic() or ""].add((msg.key() or b"").decode())
            elif error.code() == KafkaError._PARTITION_EOF:
                ends.add(msg.topic())
        return ends >= set(topics)

    try:
        if not within(drained, WAIT_S, every_s=0.01):
            raise TimeoutError(f"the admin did not reach the end of {sorted(set(topics) - ends)}")
    finally:
        consumer.close()
    return found
