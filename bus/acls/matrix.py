"""Who may do what on Kafka: every principal's ACLs, generated from the code's own catalogues.

Pure: no I/O. Topics come from :class:`bus.topics.Topics`, kommunekoder from
:mod:`schemas.domain`, partners from the partner registry (their names); the consumer groups and
faust app ids are the ones the components use (``tests/bus/test_acls.py`` holds them to it).

The principals (SCRAM user names; Kafka principal ``User:<name>``) and what each needs, read
from the component's code:

- ``admin``: the super user (``super.users``), the only one; no ACLs. It creates the topics
  (``ungebus topics create``), applies these ACLs (``ungebus acl apply``) and is the only
  principal that may DELETE, ALTER or ALTER_CONFIGS anything, or change ACLs.
- ``ops``: metadata only: DESCRIBE and DESCRIBE_CONFIGS on every topic of the bus, DESCRIBE
  on every group (consumer lag: committed offsets are read with DESCRIBE on the group, end
  offsets with DESCRIBE on the topic), DESCRIBE on the cluster (list the groups, read the ACLs
  for ``ungebus acl check``). And READ on ``deadletter`` and ``operations``, read without a
  consumer group (assigned partitions, nothing committed): ``ungebus deadletters list|show``
  prints what failed and where (never the original's personal fields) and what operators did
  about it. Revealing a payload and retrying run as ``admin``, who records both on
  ``operations``.
- ``router`` (faust app ``ungebus-router``): READ ``inbound.events``; WRITE ``tasks.*``,
  ``audit.routing``, ``deadletter``; READ and WRITE ``keys`` (it unseals the events and seals
  the tasks' details).
- ``tracker`` (faust app ``ungebus-tracker``): READ ``tasks.*`` and every ``task-acks.<kk>``;
  WRITE ``escalations.*``, ``handovers.*``, ``deadletter``.
- ``connector-http``, ``connector-files``: WRITE ``inbound.events``; READ and WRITE ``keys``
  (they seal every event with its person's data key, creating the key for someone new).
- ``connector-kafka`` (the gateway, group ``ungebus-gateway``): READ ``partner.*``; WRITE
  ``inbound.events``, ``deadletter``; READ and WRITE ``keys``.
- Every principal that reads ``keys`` has DESCRIBE on the group ``ungebus-keystore`` too, the
  group id its keyring's consumer names without ever joining it.
- ``audit-store`` (group ``audit-store``): READ ``audit.routing`` and ``erasures``; WRITE
  ``deadletter``.
- ``erasures`` (``ungebus erase``, written by ``admin`` only) is READ by the router, the
  tracker, every inbox and the audit store: each deletes or marks what it holds of the person.
- ``inbox-<kk>`` (group ``inbox.<kk>``): READ ``tasks.<kk>.*`` and ``escalations.<kk>.*``
  only; WRITE ``task-acks.<kk>`` only, and ``deadletter`` (a task record it cannot store is
  dead-lettered with the reason, as everywhere on the bus); DESCRIBE_CONFIGS on the two it
  writes (it checks their ``max.message.bytes`` at start); READ ``task-acks.<kk>`` (its own
  take-overs, read back without a group so none is published twice); READ ``keys`` (it
  unseals its tasks' details and seals a take-over's note with the person's existing key).
- ``partner-<name>``: WRITE ``partner.<name>.events`` only, so it cannot pass as another
  partner (the topic names the sender; the gateway checks the kinds and sources it may send).

Topics are created by the admin, not by the components. Each component still calls
``ensure_topics`` at start, which creates only what is missing: once ``ungebus topics create``
has run, that is a metadata request, for which DESCRIBE suffices (READ and WRITE imply it).
The one exception is faust's own topics: the router and the tracker declare their table
changelogs and ``<app_id>-__assignor-__leader`` themselves (``streams.runtime.app``), so
each may CREATE (and READ, WRITE) topics under its own ``<app_id>-`` prefix, nothing else.
``ungebus streams`` checks every topic of the pair (exists, ``max.message.bytes``) in whichever
process starts it, so both get DESCRIBE and DESCRIBE_CONFIGS on all of the pair's topics.
The partners' ``partner.<name>.events`` are the admin's to create too: ``ungebus topics
create`` and ``ungebus run`` include them, so the gateway, as ``connector-kafka``, finds them.

Idempotent producers (every producer of the bus) need no IDEMPOTENT_WRITE on the cluster:
since Kafka 3.0 WRITE on any topic allows it (KIP-679). No component uses a transactional id,
so no TRANSACTIONAL_ID bindings. READ, WRITE, DELETE and ALTER imply DESCRIBE on the same
resource, so DESCRIBE is listed only where nothing implies it.

Topic families that the router and the tracker use whole are PREFIXED (``tasks.``,
``escalations.``, ``handovers.``, ``task-acks.``, ``partner.``): only the admin creates topics,
so a prefix grants exactly the catalogue's topics, and a new municipality changes only its
own inbox's bindings. Prefixes end at a dot, so ``tasks.161.`` never matches ``tasks.1610.``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from bus import services
from bus.topics import Topics
from schemas.domain import KOMMUNEKODER


class ResourceType(StrEnum):
    TOPIC = "TOPIC"
    GROUP = "GROUP"
    TRANSACTIONAL_ID = "TRANSACTIONAL_ID"
    CLUSTER = "CLUSTER"


class Pattern(StrEnum):
    LITERAL = "LITERAL"
    PREFIXED = "PREFIXED"


class Operation(StrEnum):
    ALL = "ALL"
    READ = "READ"
    WRITE = "WRITE"
    CREATE = "CREATE"
    DELETE = "DELETE"
    ALTER = "ALTER"
    DESCRIBE = "DESCRIBE"
    CLUSTER_ACTION = "CLUSTER_ACTION"
    DESCRIBE_CONFIGS = "DESCRIBE_CONFIGS"
    ALTER_CONFIGS = "ALTER_CONFIGS"
    IDEMPOTENT_WRITE = "IDEMPOTENT_WRITE"


ALLOW = "ALLOW"
ANY_HOST = "*"
CLUSTER_NAME = "kafka-cluster"  # the one name a CLUSTER resource has
IMPLY_DESCRIBE = frozenset({Operation.READ, Operation.WRITE, Operation.DELETE, Operation.ALTER})

# -- principals -------------------------------------------------------------------------------
ADMIN = "admin"
OPS = "ops"
ROUTER = "router"
TRACKER = "tracker"
CONNECTOR_HTTP = "connector-http"
CONNECTOR_FILES = "connector-files"
CONNECTOR_KAFKA = "connector-kafka"
AUDIT_STORE = "audit-store"
SERVICE_PRINCIPALS = (
    OPS, ROUTER, TRACKER, CONNECTOR_HTTP, CONNECTOR_FILES, CONNECTOR_KAFKA, AUDIT_STORE,
)  # fmt: skip
_INBOX = re.compile(r"inbox-\d{3}")
_PARTNER = re.compile(r"partner-[a-z0-9][a-z0-9._-]{0,63}")


def inbox_principal(kommunekode: str) -> str:
    return f"inbox-{kommunekode}"


def service_principal(service: services.Service, inbox_kommunekode: str) -> str:
    """Who a component logs in to Kafka as, wherever it runs (the dev stack, compose): the
    inbox as its municipality's, the streams service as ``router`` (its handover tracker
    process as :data:`TRACKER`, with a login of its own)."""
    if service is services.INBOX:
        return inbox_principal(inbox_kommunekode)
    return {
        services.ROUTER: ROUTER,
        services.CONNECTOR_HTTP: CONNECTOR_HTTP,
        services.CONNECTOR_FILES: CONNECTOR_FILES,
        services.CONNECTOR_KAFKA: CONNECTOR_KAFKA,
        services.AUDIT_STORE: AUDIT_STORE,
    }[service]


def partner_principal(partner: str) -> str:
    return f"partner-{partner}"


def is_managed(principal: str) -> bool:
    """Whether ``ungebus acl apply`` owns this user's ACLs (a name of ours, or of the kind of
    ours: a removed municipality's or partner's leftovers are removed too)."""
    return (
        principal in (ADMIN, *SERVICE_PRINCIPALS)
        or bool(_INBOX.fullmatch(principal))
        or bool(_PARTNER.fullmatch(principal))
    )


# -- the components' own names (groups, faust app ids) -----------------------------------------
def faust_app_id(prefix: str, role: str) -> str:
    """The router's and tracker's faust app id: their group, and their internal topics'
    prefix (``streams.runtime.app.app_id_of``)."""
    return f"{prefix}ungebus-{role}"


def keystore_group(prefix: str) -> str:
    """The group id a keyring's consumer names (librdkafka wants one): never joined, never
    committed, so DESCRIBE on it is all a keyring needs (``bus.keystore``)."""
    return f"{prefix}ungebus-keystore"


def gateway_group(prefix: str) -> str:
    return f"{prefix}ungebus-gateway"


def audit_group(prefix: str) -> str:
    return f"{prefix}audit-store"


def inbox_group(prefix: str, kommunekode: str) -> str:
    return f"{prefix}inbox.{kommunekode}"


# -- the matrix -------------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Acl:
    """One binding: ``principal`` may do ``operation`` on the resource (always ALLOW)."""

    principal: str
    resource_type: ResourceType
    name: str
    pattern: Pattern
    operation: Operation
    permission: str = ALLOW
    host: str = ANY_HOST

    @property
    def kafka_principal(self) -> str:
        return f"User:{self.principal}"


Resource = tuple[ResourceType, str, Pattern]


class _Grants:
    def __init__(self) -> None:
        self.acls: set[Acl] = set()

    def add(self, principal: str, resource: Resource, *operations: Operation) -> None:
        for operation in operations:
            self.acls.add(Acl(principal, *resource, operation))

    def describe(self, principal: str, resource: Resource) -> None:
        """DESCRIBE, unless an operation already granted on the resource implies it."""
        held = {a.operation for a in self.acls if a.principal == principal and
                (a.resource_type, a.name, a.pattern) == resource}  # fmt: skip
        if not held & IMPLY_DESCRIBE:
            self.add(principal, resource, Operation.DESCRIBE)


def topic(name: str) -> Resource:
    return (ResourceType.TOPIC, name, Pattern.LITERAL)


def topics_prefixed(prefix: str) -> Resource:
    return (ResourceType.TOPIC, prefix, Pattern.PREFIXED)


def group(name: str) -> Resource:
    return (ResourceType.GROUP, name, Pattern.LITERAL)


CLUSTER: Resource = (ResourceType.CLUSTER, CLUSTER_NAME, Pattern.LITERAL)


def _everything(resource_type: ResourceType, prefix: str) -> Resource:
    """Every topic (group) of this deployment: its prefix, or ``*`` when it has none (Kafka
    refuses an empty prefix)."""
    if prefix:
        return (resource_type, prefix, Pattern.PREFIXED)
    return (resource_type, "*", Pattern.LITERAL)


def matrix(topics: Topics, partners: Iterable[str]) -> tuple[Acl, ...]:
    """Every ACL of the bus, sorted: what ``ungebus acl apply`` makes the cluster hold."""
    R, W = Operation.READ, Operation.WRITE
    p = topics.prefix
    g = _Grants()

    g.add(OPS, _everything(ResourceType.TOPIC, p), Operation.DESCRIBE, Operation.DESCRIBE_CONFIGS)
    g.add(OPS, _everything(ResourceType.GROUP, p), Operation.DESCRIBE)
    g.add(OPS, CLUSTER, Operation.DESCRIBE)
    g.add(OPS, topic(topics.deadletter), R)
    g.add(OPS, topic(topics.operations), R)

    inbound, audit, deadletter = (topic(topics.inbound_events), topic(topics.audit_routing),
                                  topic(topics.deadletter))  # fmt: skip
    tasks, escalations = topics_prefixed(f"{p}tasks."), topics_prefixed(f"{p}escalations.")
    handovers, acks = topics_prefixed(f"{p}handovers."), topics_prefixed(f"{p}task-acks.")
    internal = {role: topics_prefixed(f"{faust_app_id(p, role)}-") for role in (ROUTER, TRACKER)}

    erasures = topic(topics.erasures)  # written by admin only (``ungebus erase``)
    g.add(ROUTER, inbound, R)
    g.add(TRACKER, tasks, R)
    for role in (ROUTER, TRACKER):
        g.add(role, erasures, R)
    g.add(TRACKER, acks, R)
    for written in (tasks, audit, deadletter):
        g.add(ROUTER, written, W)
    for written in (escalations, handovers, deadletter):
        g.add(TRACKER, written, W)
    for role in (ROUTER, TRACKER):
        g.add(role, internal[role], Operation.CREATE, R, W)
        g.add(role, group(faust_app_id(p, role)), R)
    pair = (inbound, audit, deadletter, tasks, escalations, handovers, acks, topic(topics.keys),
            erasures, *internal.values())  # fmt: skip
    for role in (ROUTER, TRACKER):
        for resource in pair:
            g.describe(role, resource)
            g.add(role, resource, Operation.DESCRIBE_CONFIGS)

    g.add(CONNECTOR_HTTP, inbound, W)
    g.add(CONNECTOR_FILES, inbound, W)
    g.add(CONNECTOR_KAFKA, topics_prefixed(topics.partner_events_prefix), R)
    g.add(CONNECTOR_KAFKA, group(gateway_group(p)), R)
    g.add(CONNECTOR_KAFKA, inbound, W)
    g.add(CONNECTOR_KAFKA, deadletter, W)

    g.add(AUDIT_STORE, audit, R)
    g.add(AUDIT_STORE, erasures, R)
    g.add(AUDIT_STORE, group(audit_group(p)), R)
    g.add(AUDIT_STORE, deadletter, W)

    # The key store (``bus.keystore``): who seals personal data creates keys, who only unseals
    # reads them; nobody else may (the values are wrapped with the master key besides).
    keys, keystore = topic(topics.keys), group(keystore_group(p))
    for role in (CONNECTOR_HTTP, CONNECTOR_FILES, CONNECTOR_KAFKA, ROUTER):
        g.add(role, keys, R, W)
        g.add(role, keystore, Operation.DESCRIBE)
    for kommunekode in KOMMUNEKODER:
        g.add(inbox_principal(kommunekode), keys, R)
        g.add(inbox_principal(kommunekode), keystore, Operation.DESCRIBE)

    for kommunekode in KOMMUNEKODER:
        inbox = inbox_principal(kommunekode)
        g.add(inbox, topics_prefixed(f"{p}tasks.{kommunekode}."), R)
        g.add(inbox, topics_prefixed(f"{p}escalations.{kommunekode}."), R)
        g.add(inbox, group(inbox_group(p, kommunekode)), R)
        g.add(inbox, erasures, R)  # it deletes an erased person's tasks
        for written in (topic(topics.task_acks_of(kommunekode)), deadletter):
            g.add(inbox, written, W, Operation.DESCRIBE_CONFIGS)
        # Its own take-overs read back, without a group, before one is published again
        # (``consumers.inbox.pending``).
        g.add(inbox, topic(topics.task_acks_of(kommunekode)), R)

    for partner in partners:
        g.add(partner_principal(partner), topic(topics.partner_events(partner)), W)
    return tuple(sorted(g.acls))


def allowed(
    acls: Iterable[Acl], principal: str, resource_type: ResourceType, name: str, op: Operation
) -> bool:
    """Whether Kafka's ACL authorizer lets ``principal`` do ``op`` on the named resource under
    these (ALLOW-only) ACLs: a LITERAL name matches itself, ``*`` matches every name, a PREFIXED
    one every name that starts with it; ALL allows everything, and READ, WRITE, DELETE, ALTER
    imply DESCRIBE, ALTER_CONFIGS implies DESCRIBE_CONFIGS. (What a test observes on a real
    broker is compared with this.)"""
    wanted = {op, Operation.ALL}
    if op is Operation.DESCRIBE:
        wanted |= IMPLY_DESCRIBE
    if op is Operation.DESCRIBE_CONFIGS:
        wanted.add(Operation.ALTER_CONFIGS)
    return any(
        acl.principal == principal
        and acl.permission == ALLOW
        and acl.resource_type is resource_type
        and acl.operation in wanted
        and (
            acl.name in (name, "*") if acl.pattern is Pattern.LITERAL else name.startswith(acl.name)
        )
        for acl in acls
    )


def principals(acls: Iterable[Acl]) -> list[str]:
    """The principals that hold these ACLs, in the matrix's order."""
    return sorted({a.principal for a in acls})


# -- the difference between the matrix and a cluster -------------------------------------------
@dataclass(frozen=True)
class AclDiff:
    missing: tuple[Acl, ...]
    """In the matrix, not on the cluster: ``apply`` creates them."""
    unexpected: tuple[Acl, ...]
    """On the cluster for a principal of ours, not in the matrix: ``apply`` deletes them."""

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected)


def diff(wanted: Iterable[Acl], actual: Iterable[Acl]) -> AclDiff:
    """What differs between the generated ACLs and the cluster's; ACLs of principals that are
    not ours (:func:`is_managed`) are left alone."""
    want = set(wanted)
    have = {acl for acl in actual if is_managed(acl.principal)}
    return AclDiff(tuple(sorted(want - have)), tuple(sorted(have - want)))
