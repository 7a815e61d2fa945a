"""What the ACL matrix says a client may do, next to what a secured broker let it do.

Pure: no I/O. A :class:`Check` is one principal's attempt at one operation on one target (a
topic, or the cluster); :func:`expected` answers it from the generated matrix with
:func:`bus.acls.matrix.allowed` (the admin, the super user, may do everything; a client that is
not one of the matrix's principals, such as an anonymous or a wrong-password one, nothing);
:func:`mismatches` keeps the observations that disagree, :func:`mismatch_table` prints them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from bus.acls.matrix import ADMIN, CLUSTER_NAME, Acl, Operation, ResourceType, allowed

CLUSTER_TARGET = "(cluster)"


class Op(StrEnum):
    """What a client tries, and how it is observed."""

    PRODUCE = "produce a record"
    READ = "read a record, no group (assign)"
    CONSUME_OWN = "consume a record, own group"
    CONSUME_FOREIGN = "consume a record, foreign group"
    DESCRIBE = "describe the topic (metadata)"
    DESCRIBE_CONFIGS = "describe the topic's configs"
    CREATE = "create a topic of the family"
    DELETE = "delete a topic of the family"
    CREATE_ACL = "create an ACL"
    DESCRIBE_ACLS = "describe the ACLs"


@dataclass(frozen=True, order=True)
class Check:
    principal: str
    """A matrix principal, ``admin``, or a label such as ``ANONYMOUS`` for a client that does
    not log in as one."""
    op: Op
    target: str
    """The topic (for CREATE and DELETE: the name the client asks to create or delete), or
    :data:`CLUSTER_TARGET`."""
    group: str | None = None
    """The consumer group of the CONSUME operations."""


@dataclass(frozen=True)
class Observation:
    check: Check
    allowed: bool
    detail: str
    """What the broker answered: ``ok``, an error name (``TOPIC_AUTHORIZATION_FAILED``...)."""


_TOPIC_OPERATION = {
    Op.PRODUCE: Operation.WRITE,
    Op.READ: Operation.READ,
    Op.CONSUME_OWN: Operation.READ,
    Op.CONSUME_FOREIGN: Operation.READ,
    Op.DESCRIBE: Operation.DESCRIBE,
    Op.DESCRIBE_CONFIGS: Operation.DESCRIBE_CONFIGS,
    Op.CREATE: Operation.CREATE,
    Op.DELETE: Operation.DELETE,
}


def expected(acls: Iterable[Acl], check: Check) -> bool:
    """Whether the matrix lets ``check.principal`` do it (what Kafka's authorizer decides)."""
    if check.principal == ADMIN:
        return True
    acls = tuple(acls)
    p = check.principal

    def may(resource_type: ResourceType, name: str, operation: Operation) -> bool:
        return allowed(acls, p, resource_type, name, operation)

    if check.op is Op.CREATE_ACL:
        return may(ResourceType.CLUSTER, CLUSTER_NAME, Operation.ALTER)
    if check.op is Op.DESCRIBE_ACLS:
        return may(ResourceType.CLUSTER, CLUSTER_NAME, Operation.DESCRIBE)
    if check.op is Op.CREATE and may(ResourceType.CLUSTER, CLUSTER_NAME, Operation.CREATE):
        return True
    topic_ok = may(ResourceType.TOPIC, check.target, _TOPIC_OPERATION[check.op])
    if check.op in (Op.CONSUME_OWN, Op.CONSUME_FOREIGN):
        assert check.group is not None, check
        return topic_ok and may(ResourceType.GROUP, check.group, Operation.READ)
    return topic_ok


@dataclass(frozen=True)
class Mismatch:
    observation: Observation
    expected: bool

    @property
    def kind(self) -> str:
        return "unexpected allow" if self.observation.allowed else "unexpected deny"


def mismatches(acls: Iterable[Acl], observations: Iterable[Observation]) -> list[Mismatch]:
    """The observations that disagree with the matrix, sorted by principal, operation,
    target."""
    acls = tuple(acls)
    found = []
    for observation in observations:
        want = expected(acls, observation.check)
        if observation.allowed != want:
            found.append(Mismatch(observation, want))
    return sorted(found, key=lambda m: m.observation.check)


def counts(found: Iterable[Mismatch]) -> tuple[int, int]:
    """(unexpected allows, unexpected denies)."""
    found = list(found)
    allows = sum(1 for m in found if m.observation.allowed)
    return allows, len(found) - allows


def mismatch_table(found: Iterable[Mismatch]) -> str:
    """One line per mismatch, aligned: kind, principal, operation, target, group, answer."""
    rows = [("", "principal", "operation", "target", "group", "broker answered")]
    for m in found:
        c = m.observation.check
        rows.append(
            (m.kind, c.principal, c.op.value, c.target, c.group or "-", m.observation.detail)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
