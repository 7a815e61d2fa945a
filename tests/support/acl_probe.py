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

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
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

    ending: frozenset[int]
    seen: list[KafkaError] = field(default_factory=list)

    def __call__(self, error: KafkaError) -> None:
        self.seen.append(error)

    @property
    def final(self) -> KafkaError | None:
        return next((e for e in self.seen if e.code() in self.ending or e.fatal()), None)


@dataclass(frozen=True)
class Client:
    """One client: who it says it is (``label``) and how it connects (``config``)."""

    label: str
    config: dict[str, Any]
    shut_out: bool = False
    """A client the broker closes every connection of (TLS without SASL on a SASL_SSL
    listener): a transport error is its final answer."""

    def _errors(self) -> _Errors:
        extra = {KafkaError._TRANSPORT} if self.shut_out else set()
        return _Errors(frozenset(_ENDS_THE_CLIENT | extra))

    def _conf(self, errors: _Errors, **extra: Any) -> dict[str, Any]:
        return {**self.config, "error_cb": errors, **extra}

    # -- produce ----------------------------------------------------------------------------
    def produce(self, topics: Sequence[str]) -> list[Observation]:
        errors = self._errors()
        producer = Producer(
            self._conf(
                errors,
                **{
                    "enable.idempotence": True,
                    "acks": "all",
                    "message.timeout.ms": int(WAIT_S * 1000),
                },
            )
        )
        answers: dict[str, KafkaError | None] = {}
        for topic in topics:
            producer.produce(
                topic,
                key=self.label.encode(),
                value=b"acl matrix probe",
                on_delivery=lambda err, _msg, t=topic: answers.__setitem__(t, err),
            )

        def answered() -> bool:
            try:
                producer.poll(0.1)
            except KafkaException as exc:  # a fatal error (no idempotent PID: no WRITE at all)
                errors(exc.args[0])
            return len(answers) == len(topics) or errors.final is not None

        within(answered, WAIT_S, every_s=0.05)
        producer.purge()
        producer.flush(0)
        producer.close()
        final = errors.final
        return [
            Observation(
                Check(self.label, Op.PRODUCE, t),
                t in answers and answers[t] is None,
                _name(answers[t]) if t in answers else _name(final) if final else "no answer",
            )
            for t in topics
        ]

    # -- consume ----------------------------------------------------------------------------
    def consume(self, topics: Sequence[str], op: Op, group: str | None) -> list[Observation]:
        """``op`` READ: assign every topic's partition 0 from the beginning (no group);
        CONSUME_*: subscribe to them all in ``group``. Each topic holds a record already."""
        errors = self._errors()
        extra: dict[str, Any] = {
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
        }
        extra["group.id"] = group if group is not None else f"matrix-assign-{self.label}"
        consumer = Consumer(self._conf(errors, **extra))
        got: dict[str, str] = {}
        refused: list[str] = []
        if group is None:
            # A client the broker does not tell where a topic is (no DESCRIBE) cannot fetch
            # it: librdkafka waits for the leader silently, so that is asked first.
            try:
                known = consumer.list_topics(timeout=5).topics
            except KafkaException as exc:
                consumer.close()
                why = exc.args[0].name() if isinstance(exc.args[0], KafkaError) else str(exc)
                return [Observation(Check(self.label, op, t, group), False, why) for t in topics]
            for t in topics:  # every one exists: the broker hides those it may not describe
                if t not in known:
                    got[t] = "hidden from its metadata"
                elif (error := known[t].error) is not None:
                    got[t] = f"{error.name()} (metadata)"
            wanted = [t for t in topics if t not in got]
            consumer.assign([TopicPartition(t, 0, OFFSET_BEGINNING) for t in wanted])
        else:
            consumer.subscribe(list(topics))

        def resolved() -> bool:
            try:
                msg = consumer.poll(0.2)
            except KafkaException as exc:
                errors(exc.args[0])
                return True
            if msg is not None:
                error = msg.error()
                if error is None:
                    got.setdefault(msg.topic() or "", "ok")
                elif error.code() in _ENDS_THE_GROUP:
                    # Without a group (assign), the client still looks its configured
                    # group's coordinator up; a fetch does not need the group.
                    if group is not None:
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
        errors = self._errors()
        admin = AdminClient(self._conf(errors))
        timeout = {"request_timeout": WAIT_S}
        asked: list[tuple[Check, Any]] = []
        for topic, future in admin.describe_topics(
            TopicCollection(list(topics)), **timeout
        ).items():
            asked.append((Check(self.label, Op.DESCRIBE, topic), future))
        resources = [ConfigResource(KafkaResourceType.TOPIC, t) for t in topics]
        for resource, future in admin.describe_configs(resources, **timeout).items():
            asked.append((Check(self.label, Op.DESCRIBE_CONFIGS, resource.name), future))
        new = [NewTopic(t, num_partitions=1, replication_factor=1) for t in fresh]
        created = admin.create_topics(new, validate_only=True, operation_timeout=WAIT_S, **timeout)
        for topic, future in created.items():
            asked.append((Check(self.label, Op.CREATE, topic), future))
        for topic, future in admin.delete_topics(
            list(doomed), operation_timeout=WAIT_S, **timeout
        ).items():
            asked.append((Check(self.label, Op.DELETE, topic), future))
        probe = AclBinding(
            KafkaResourceType.TOPIC,
            "matrix-probe",
            ResourcePatternType.LITERAL,
            PROBE_PRINCIPAL,
            "*",
            AclOperation.READ,
            AclPermissionType.ALLOW,
        )
        for future in admin.create_acls([probe], **timeout).values():
            asked.append((Check(self.label, Op.CREATE_ACL, CLUSTER_TARGET), future))
        # Read as allowed when the ACLs show (the matrix is applied: there are some).
        acls = admin.describe_acls(_every_acl(), **timeout)
        asked.append((Check(self.label, Op.DESCRIBE_ACLS, CLUSTER_TARGET), acls))

        def answered() -> bool:
            admin.poll(0.05)
            return all(f.done() for _, f in asked) or errors.final is not None

        within(answered, WAIT_S, every_s=0.01)
        final = errors.final
        return [_observed(check, future, final) for check, future in asked]


def _observed(check: Check, future: Any, final: KafkaError | None) -> Observation:
    if not future.done():
        return Observation(check, False, _name(final) if final else "no answer")
    try:
        result = future.result()
    except KafkaException as exc:
        error = exc.args[0]
        return Observation(
            check, False, error.name() if isinstance(error, KafkaError) else str(exc)
        )
    if check.op is Op.DESCRIBE_ACLS and not result:
        return Observation(check, False, "no ACLs shown")
    return Observation(check, True, "ok")


def _every_acl() -> AclBindingFilter:
    return AclBindingFilter(
        KafkaResourceType.ANY,
        _ANY,
        ResourcePatternType.ANY,
        _ANY,
        _ANY,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )


def writers(config: dict[str, Any], topics: Iterable[str]) -> dict[str, set[str]]:
    """Who wrote to each topic (the records' keys), read by ``config``'s client (the admin)
    from the beginning to the end offsets."""
    topics = list(topics)
    consumer = Consumer(
        {
            **config,
            "group.id": "matrix-audit",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
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
