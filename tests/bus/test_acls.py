"""The ACL matrix (pure): each principal may do what its component does, and nothing else."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bus.acls.cli import acl, describe_diff
from bus.acls.matrix import (
    ADMIN,
    AUDIT_STORE,
    CONNECTOR_FILES,
    CONNECTOR_HTTP,
    CONNECTOR_KAFKA,
    OPS,
    ROUTER,
    TRACKER,
    Acl,
    Operation,
    Pattern,
    ResourceType,
    allowed,
    diff,
    faust_app_id,
    inbox_principal,
    is_managed,
    matrix,
    partner_principal,
)
from bus.topics import Topics
from schemas.domain import KOMMUNEKODER, UNITS

TOPIC, GROUP, CLUSTER = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER
R, W, C, D = Operation.READ, Operation.WRITE, Operation.CREATE, Operation.DESCRIBE
PARTNERS = ("skole-a", "skole-b")
T = Topics()
ACLS = matrix(T, PARTNERS)


def may(principal: str, op: Operation, name: str, resource_type: ResourceType = TOPIC) -> bool:
    return allowed(ACLS, principal, resource_type, name, op)


def every_topic(topics: Topics = T) -> list[str]:
    names = [spec.name for spec in topics.catalogue()]
    names += [topics.partner_events(p) for p in (*PARTNERS, "another")]
    names += [f"{faust_app_id(topics.prefix, r)}-consents-changelog" for r in ("router", "tracker")]
    return names


def test_every_principal_of_the_shared_names_has_acls_and_admin_has_none() -> None:
    principals = {a.principal for a in ACLS}
    wanted = {OPS, ROUTER, TRACKER, CONNECTOR_HTTP, CONNECTOR_FILES, CONNECTOR_KAFKA, AUDIT_STORE}
    wanted |= {inbox_principal(kk) for kk in KOMMUNEKODER}
    wanted |= {partner_principal(p) for p in PARTNERS}
    assert principals == wanted
    assert ADMIN not in principals
    assert all(a.permission == "ALLOW" and a.host == "*" for a in ACLS)


def test_nobody_may_delete_alter_or_change_configs_or_acls() -> None:
    forbidden = {Operation.ALL, Operation.DELETE, Operation.ALTER, Operation.ALTER_CONFIGS,
                 Operation.CLUSTER_ACTION, Operation.IDEMPOTENT_WRITE}  # fmt: skip
    assert not [a for a in ACLS if a.operation in forbidden]
    assert {a.principal for a in ACLS if a.resource_type is CLUSTER} == {OPS}
    assert not [a for a in ACLS if a.resource_type is ResourceType.TRANSACTIONAL_ID]


def test_only_the_faust_apps_create_topics_and_only_their_own() -> None:
    creating = {(a.principal, a.name, a.pattern) for a in ACLS if a.operation is C}
    assert creating == {
        (ROUTER, "ungebus-router-", Pattern.PREFIXED),
        (TRACKER, "ungebus-tracker-", Pattern.PREFIXED),
    }
    for name in every_topic():
        for principal in {a.principal for a in ACLS}:
            assert may(principal, C, name) == (
                name.startswith(f"ungebus-{principal}-") and principal in (ROUTER, TRACKER)
            ), (principal, name)


@pytest.mark.parametrize("kk", sorted(KOMMUNEKODER))
def test_an_inbox_reads_and_acknowledges_only_its_own_municipality(kk: str) -> None:
    inbox = inbox_principal(kk)
    for other in KOMMUNEKODER:
        own = other == kk
        for unit in UNITS:
            assert may(inbox, R, T.tasks(other, unit)) is own
            assert may(inbox, R, T.escalations(other, unit)) is own
        assert may(inbox, W, T.task_acks_of(other)) is own
        assert may(inbox, R, T.task_acks_of(other)) is own  # its own take-overs read back
        assert may(inbox, R, f"inbox.{other}", GROUP) is own
    read = {n for n in every_topic() if may(inbox, R, n)}
    tasks = {T.tasks(kk, u) for u in UNITS} | {T.escalations(kk, u) for u in UNITS}
    # keys: it unseals its tasks' details; erasures: it deletes an erased person's tasks
    assert read == tasks | {T.task_acks_of(kk), T.keys, T.erasures}
    assert may(inbox, D, "ungebus-keystore", GROUP) and not may(inbox, W, T.keys)
    written = {n for n in every_topic() if may(inbox, W, n)}
    assert written == {T.task_acks_of(kk), T.deadletter}


def test_a_partner_writes_only_its_own_topic_and_reads_nothing() -> None:
    for partner in PARTNERS:
        principal = partner_principal(partner)
        assert {n for n in every_topic() if may(principal, W, n)} == {T.partner_events(partner)}
        assert not [n for n in every_topic() if may(principal, R, n)]
        assert not [a for a in ACLS if a.principal == principal and a.resource_type is GROUP]


def test_each_component_may_do_what_its_code_does() -> None:
    every_task = T.all_tasks()
    assert may(ROUTER, R, T.inbound_events) and may(ROUTER, R, "ungebus-router", GROUP)
    assert all(may(ROUTER, W, t) for t in (*every_task, T.audit_routing, T.deadletter))
    assert all(may(TRACKER, R, t) for t in every_task)
    assert all(may(TRACKER, R, T.task_acks_of(kk)) for kk in KOMMUNEKODER)
    assert all(may(TRACKER, W, T.escalations(kk, u)) for kk in KOMMUNEKODER for u in UNITS)
    assert all(may(TRACKER, W, T.handovers(kk)) for kk in KOMMUNEKODER)
    assert may(TRACKER, R, "ungebus-tracker", GROUP) and not may(
        TRACKER, R, "ungebus-router", GROUP
    )
    for role in (ROUTER, TRACKER):  # `ungebus streams` checks all of the pair's topics
        for spec in (s for s in T.catalogue() if s.name != T.operations):  # operators' own
            assert may(role, D, spec.name) and may(role, Operation.DESCRIBE_CONFIGS, spec.name)
        assert not may(role, D, T.partner_events("skole-a"))
        for own in ("consents-changelog", "__assignor-__leader"):
            assert all(may(role, op, f"ungebus-{role}-{own}") for op in (R, W, C))
    assert not may(ROUTER, W, T.escalations("161", "youth_unit"))
    assert not may(TRACKER, W, T.tasks("161", "youth_unit"))
    # Who seals personal data (the connectors, the router) reads and creates data keys.
    for sealer in (CONNECTOR_HTTP, CONNECTOR_FILES, CONNECTOR_KAFKA, ROUTER):
        assert may(sealer, R, T.keys) and may(sealer, W, T.keys)
        assert may(sealer, D, "ungebus-keystore", GROUP)
        assert not may(sealer, R, "ungebus-keystore", GROUP)  # never joined
    for other in (TRACKER, AUDIT_STORE, OPS):
        assert not may(other, R, T.keys) and not may(other, W, T.keys)
    for connector in (CONNECTOR_HTTP, CONNECTOR_FILES):
        assert {n for n in every_topic() if may(connector, W, n)} == {T.inbound_events, T.keys}
        described = {T.inbound_events, T.keys}
        assert not [n for n in every_topic() if may(connector, D, n) and n not in described]
    gateway_reads = {n for n in every_topic() if may(CONNECTOR_KAFKA, R, n)}
    assert gateway_reads == {T.partner_events(p) for p in (*PARTNERS, "another")} | {T.keys}
    assert {n for n in every_topic() if may(CONNECTOR_KAFKA, W, n)} == {
        T.inbound_events,
        T.deadletter,
        T.keys,
    }
    assert {n for n in every_topic() if may(AUDIT_STORE, R, n)} == {T.audit_routing, T.erasures}
    for reader in (ROUTER, TRACKER, AUDIT_STORE, inbox_principal("161")):
        assert may(reader, R, T.erasures) and not may(reader, W, T.erasures)
    assert may(AUDIT_STORE, R, "audit-store", GROUP)


def test_ops_reads_metadata_lag_and_dead_letters_but_no_other_record() -> None:
    """Operators list and show dead letters (``ungebus deadletters``) and what operators did
    about them; every other topic they only describe, and they write nothing."""
    readable = {T.deadletter, T.operations}
    for name in every_topic():
        assert may(OPS, D, name) and may(OPS, Operation.DESCRIBE_CONFIGS, name)
        assert may(OPS, R, name) is (name in readable) and not may(OPS, W, name)
    assert may(OPS, D, "inbox.161", GROUP) and not may(OPS, R, "inbox.161", GROUP)
    assert may(OPS, D, "kafka-cluster", CLUSTER)


def test_the_names_are_the_components_own() -> None:
    from bus.settings import Settings
    from consumers.audit.settings import AuditSettings
    from consumers.inbox.settings import InboxSettings
    from streams.runtime.app import app_id_of, internal_topics

    for prefix in ("", "t1-"):
        settings = Settings(topic_prefix=prefix)
        for role in ("router", "tracker"):
            assert app_id_of(settings, role) == faust_app_id(prefix, role)
        topics = Topics(prefix)
        acls = matrix(topics, PARTNERS)
        for spec in internal_topics(settings):  # faust's own: its app's principal may create
            role = ROUTER if "-router-" in spec.name else TRACKER
            assert allowed(acls, role, TOPIC, spec.name, C)
        assert allowed(acls, AUDIT_STORE, GROUP, AuditSettings(topic_prefix=prefix).group_id, R)
        for kk in KOMMUNEKODER:
            group = InboxSettings(topic_prefix=prefix, inbox_kommunekode=kk).group_id
            assert allowed(acls, inbox_principal(kk), GROUP, group, R)


def test_a_prefix_namespaces_every_resource_but_the_cluster() -> None:
    topics = Topics("t1-")
    acls = matrix(topics, PARTNERS)
    assert all(a.name.startswith("t1-") for a in acls if a.resource_type is not CLUSTER)
    assert allowed(acls, OPS, TOPIC, "t1-deadletter", D)
    assert not allowed(acls, OPS, TOPIC, "deadletter", D)
    assert not allowed(acls, inbox_principal("161"), TOPIC, "tasks.161.youth_unit", R)


def test_adding_a_partner_adds_one_binding_for_it_alone() -> None:
    more = matrix(T, (*PARTNERS, "ny-partner"))
    assert set(more) - set(ACLS) == {
        Acl(
            partner_principal("ny-partner"),
            TOPIC,
            T.partner_events("ny-partner"),
            Pattern.LITERAL,
            W,
        )
    }


def test_the_diff_names_what_is_missing_and_what_is_unexpected() -> None:
    assert not diff(ACLS, ACLS)
    extra = Acl(inbox_principal("161"), TOPIC, "tasks.", Pattern.PREFIXED, R)
    denied = Acl(ROUTER, TOPIC, T.deadletter, Pattern.LITERAL, W, permission="DENY")
    foreign = Acl("someone-else", TOPIC, "*", Pattern.LITERAL, Operation.ALL)
    dropped = ACLS[0]
    changes = diff(ACLS, [*ACLS[1:], extra, denied, foreign])
    assert changes.missing == (dropped,)
    assert set(changes.unexpected) == {extra, denied}  # someone else's are not ours to judge
    lines = describe_diff(changes)
    assert any(line.startswith("missing") and dropped.name in line for line in lines)
    assert any("unexpected" in line and "User:router" in line and "DENY" in line for line in lines)


def test_managed_principals_are_ours_by_name() -> None:
    assert all(is_managed(p) for p in ("admin", "ops", "inbox-999", "partner-gone", "router"))
    assert not any(is_managed(p) for p in ("ANONYMOUS", "inbox-x", "alice", "partner-"))


def test_acl_show_prints_a_table_a_principal_or_json() -> None:
    runner = CliRunner()
    shown = runner.invoke(acl, ["show", "--principal", "inbox-161"])
    assert shown.exit_code == 0, shown.output
    assert "tasks.161." in shown.output and "tasks.165." not in shown.output
    assert "task-acks.161" in shown.output
    full = runner.invoke(acl, ["show", "--format", "json"])
    records = json.loads(full.output)
    assert {r["principal"] for r in records} >= {"router", "tracker", "inbox-165", "ops"}
    assert all(r["permission"] == "ALLOW" for r in records)
    unknown = runner.invoke(acl, ["show", "--principal", "nobody"])
    assert unknown.exit_code != 0 and "not a principal" in unknown.output


def test_a_cluster_without_an_authorizer_is_named_as_such() -> None:
    from confluent_kafka import KafkaError, KafkaException

    from bus.acls.cluster import _reason

    assert "no authorizer" in _reason(KafkaException(KafkaError(KafkaError.SECURITY_DISABLED)))
    denied = _reason(KafkaException(KafkaError(KafkaError.CLUSTER_AUTHORIZATION_FAILED)))
    assert "CLUSTER_AUTHORIZATION_FAILED" in denied
