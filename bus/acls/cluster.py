"""The matrix on a running cluster: read its ACLs, create what is missing, delete what is not
ours to keep. Runs under the admin principal's settings (only the admin may change ACLs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
)
from confluent_kafka.admin import ResourceType as KafkaResourceType

from bus.acls.matrix import Acl, AclDiff, Operation, Pattern, ResourceType, diff

# Kafka's CLUSTER resource is librdkafka's BROKER (both are resource type 4 on the wire).
_RESOURCE = {
    ResourceType.TOPIC: KafkaResourceType.TOPIC,
    ResourceType.GROUP: KafkaResourceType.GROUP,
    ResourceType.TRANSACTIONAL_ID: KafkaResourceType.TRANSACTIONAL_ID,
    ResourceType.CLUSTER: KafkaResourceType.BROKER,
}
_RESOURCE_BACK = {kafka: ours for ours, kafka in _RESOURCE.items()}
_PATTERN = {
    Pattern.LITERAL: ResourcePatternType.LITERAL,
    Pattern.PREFIXED: ResourcePatternType.PREFIXED,
}
_PATTERN_BACK = {kafka: ours for ours, kafka in _PATTERN.items()}
_ANY = cast(str, None)  # a filter's "any name, principal, host" (the stubs say str)


class AclError(RuntimeError):
    """The cluster refused or did not answer; the message says which request and why."""


def to_binding(acl: Acl) -> AclBinding:
    return AclBinding(
        _RESOURCE[acl.resource_type],
        acl.name,
        _PATTERN[acl.pattern],
        acl.kafka_principal,
        acl.host,
        AclOperation[acl.operation.value],
        AclPermissionType[acl.permission],
    )


def from_binding(binding: AclBinding) -> Acl | None:
    """Our value of a cluster's binding; None for what the matrix cannot hold (a principal
    that is not a ``User:``, a resource type it does not use)."""
    kind, _, name = binding.principal.partition(":")
    resource = _RESOURCE_BACK.get(KafkaResourceType(binding.restype))
    pattern = _PATTERN_BACK.get(ResourcePatternType(binding.resource_pattern_type))
    if kind != "User" or resource is None or pattern is None:
        return None
    return Acl(
        principal=name,
        resource_type=resource,
        name=binding.name,
        pattern=pattern,
        operation=Operation(AclOperation(binding.operation).name),
        permission=AclPermissionType(binding.permission_type).name,
        host=binding.host,
    )


def binding_filter(acl: Acl) -> AclBindingFilter:
    """A filter that matches exactly this binding (to delete it)."""
    b = to_binding(acl)
    return AclBindingFilter(
        b.restype,
        b.name,
        b.resource_pattern_type,
        b.principal,
        b.host,
        b.operation,
        b.permission_type,
    )


class ClusterAcls:
    def __init__(self, config: Mapping[str, Any], timeout_s: float = 15.0) -> None:
        self._admin = AdminClient(dict(config))
        self._timeout_s = timeout_s

    def read(self) -> list[Acl]:
        """Every ACL on the cluster that the matrix can express."""
        everything = AclBindingFilter(
            KafkaResourceType.ANY,
            _ANY,
            ResourcePatternType.ANY,
            _ANY,
            _ANY,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        try:
            found = self._admin.describe_acls(everything, request_timeout=self._timeout_s).result()
        except KafkaException as exc:
            raise AclError(f"reading the cluster's ACLs failed: {_reason(exc)}") from exc
        return [acl for acl in map(from_binding, found) if acl is not None]

    def compare(self, wanted: Iterable[Acl]) -> AclDiff:
        return diff(wanted, self.read())

    def apply(self, wanted: Iterable[Acl]) -> AclDiff:
        """Create the missing ACLs and delete the unexpected ones; return what was changed.
        Idempotent: a second run finds nothing to do."""
        want = tuple(wanted)
        changes = self.compare(want)
        if changes.missing:
            created = self._admin.create_acls(
                [to_binding(a) for a in changes.missing], request_timeout=self._timeout_s
            )
            _wait("creating", created.values())
        if changes.unexpected:
            deleted = self._admin.delete_acls(
                [binding_filter(a) for a in changes.unexpected], request_timeout=self._timeout_s
            )
            _wait("deleting", deleted.values())
        if changes:
            self._until_shown(want)
        return changes

    def _until_shown(self, wanted: Iterable[Acl]) -> None:
        """Return once the cluster reads back what was applied: the controller has committed
        it, a broker answers from its own copy of the metadata, which follows shortly."""
        from bus.waiting import within

        if not within(lambda: not self.compare(wanted), self._timeout_s, every_s=0.1):
            left = self.compare(wanted)
            raise AclError(
                f"the cluster accepted the changes but still shows {len(left.missing)} missing "
                f"and {len(left.unexpected)} unexpected ACLs after {self._timeout_s:g} s"
            )


def _wait(doing: str, futures: Iterable[Any]) -> None:
    problems = []
    for future in futures:
        try:
            future.result()
        except KafkaException as exc:
            problems.append(_reason(exc))
    if problems:
        raise AclError(f"{doing} {len(problems)} ACLs failed: {'; '.join(sorted(set(problems)))}")


def _reason(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError):
        if error.code() == KafkaError.SECURITY_DISABLED:
            return "the cluster has no authorizer (authorizer.class.name is not set)"
        return f"{error.name()}: {error.str()}"
    return str(exc)
