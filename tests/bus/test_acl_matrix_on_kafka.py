"""The ACL matrix on a real, secured broker: what every client is let do is what the matrix says.

A broker of its own (SASL_SSL + SCRAM-SHA-512, StandardAuthorizer, ``admin`` the super user).
As admin: one topic of every family of the catalogue, each holding one record, and the
generated matrix applied. Then every principal the matrix names, the admin, an anonymous client
(TLS without SASL) and a client with a wrong password try every operation on every family:
produce, read without a group, consume in their own group and in a foreign one, describe,
describe the configs, create and delete a topic of the family, create an ACL, read the ACLs.
Each answer is compared with :func:`bus.acls.matrix.allowed` over the matrix (the admin may do
everything, the two strangers nothing); any disagreement fails with a table of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from bus.acls.cluster import ClusterAcls
from bus.acls.matrix import (
    ADMIN,
    Operation,
    ResourceType,
    inbox_principal,
    matrix,
    partner_principal,
    principals,
)
from bus.settings import Settings
from bus.topics import Topics, TopicSpec, ensure_topics
from deploy.local.broker import LocalKafka
from deploy.local.security import upsert_credentials
from streams.runtime.app import internal_topics
from tests.support.acl_observations import (
    Observation,
    Op,
    counts,
    mismatch_table,
    mismatches,
)
from tests.support.acl_probe import Client, writers
from tests.support.kafka_login import own_secured_broker

pytestmark = pytest.mark.integration

TOPICS = Topics()
PARTNERS = ("demo-gym", "demo-prison")
MATRIX = matrix(TOPICS, PARTNERS)
ANONYMOUS = "ANONYMOUS"
WRONG_PASSWORD = "router (wrong password)"
FAMILIES = [
    TOPICS.inbound_events,
    *(TOPICS.partner_events(p) for p in PARTNERS),
    TOPICS.tasks("161", "youth_unit"),
    TOPICS.tasks("165", "jobcentre"),
    TOPICS.escalations("161", "youth_unit"),
    TOPICS.escalations("165", "ssp"),
    TOPICS.task_acks_of("161"),
    TOPICS.task_acks_of("165"),
    TOPICS.handovers("161"),
    TOPICS.audit_routing,
    TOPICS.deadletter,
    TOPICS.operations,
    *(spec.name for spec in internal_topics(Settings(topic_prefix=""))),
]
FRESH = [f"{t}-new" for t in FAMILIES]  # what a client asks to create (validate only)
DOOMED = [f"{t}-doomed" for t in FAMILIES]  # what a client asks to delete


def own_group(principal: str) -> str | None:
    held = [
        a.name
        for a in MATRIX
        if a.principal == principal
        and a.resource_type is ResourceType.GROUP
        and a.operation is Operation.READ
    ]
    return held[0] if held else None


def foreign_group(principal: str) -> str:
    """Another component's group: the nearest one a mistake would hand out."""
    others = {
        "router": "tracker",
        "tracker": "router",
        "connector-kafka": "audit-store",
        "audit-store": "connector-kafka",
    }
    if principal in others:
        group = own_group(others[principal])
    else:
        group = own_group(inbox_principal("161" if principal == inbox_principal("165") else "165"))
    assert group is not None
    return group


@dataclass(frozen=True)
class Run:
    observations: tuple[Observation, ...]
    writers: dict[str, set[str]]


@pytest.fixture(scope="module")
def secured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    with own_secured_broker(tmp_path_factory.mktemp("kafka-acl-matrix")) as broker:
        yield broker


def client(broker: LocalKafka, label: str) -> Client:
    if label == ANONYMOUS:
        return Client(
            label,
            {
                "bootstrap.servers": broker.bootstrap_servers,
                "security.protocol": "SSL",
                "ssl.ca.location": str(broker.security.ca_cert),
            },
            shut_out=True,
        )
    if label == WRONG_PASSWORD:
        return Client(label, {**broker.client_config("router"), "sasl.password": "not-it"})
    return Client(label, broker.client_config(label))


def probe(c: Client) -> list[Observation]:
    seen = c.produce(FAMILIES)
    seen += c.consume(FAMILIES, Op.READ, None)
    if (group := own_group(c.label)) is not None:
        seen += c.consume(FAMILIES, Op.CONSUME_OWN, group)
    seen += c.consume(FAMILIES, Op.CONSUME_FOREIGN, foreign_group(c.label))
    seen += c.admin(FAMILIES, FRESH, DOOMED)
    return seen


@pytest.fixture(scope="module")
def run(secured_broker: LocalKafka) -> Run:
    """Set the broker up as admin, let every client try everything, read who wrote what."""
    admin_config = secured_broker.client_config(ADMIN)
    partners = [partner_principal(p) for p in PARTNERS]
    upsert_credentials(admin_config, secured_broker.security, partners)
    ensure_topics(admin_config, [TopicSpec(t, 1) for t in (*FAMILIES, *DOOMED)])
    seeded = Client("seed", admin_config).produce(FAMILIES)
    assert all(o.allowed for o in seeded), seeded
    ClusterAcls(admin_config).apply(MATRIX)

    strangers = [p for p in principals(MATRIX) if p != ADMIN] + [ANONYMOUS, WRONG_PASSWORD]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda p: probe(client(secured_broker, p)), strangers))
    observations = [o for seen in results for o in seen]
    observations += probe(client(secured_broker, ADMIN))  # last: it may delete and join all
    return Run(tuple(observations), writers(admin_config, FAMILIES))


def test_every_client_is_let_do_what_the_matrix_says_and_nothing_else(run: Run) -> None:
    found = mismatches(MATRIX, run.observations)
    allows, denies = counts(found)
    assert not found, (
        f"{allows} unexpected allows, {denies} unexpected denies "
        f"(of {len(run.observations)} checks):\n{mismatch_table(found)}"
    )


def answers(run: Run, principal: str, *ops: Op) -> dict[tuple[Op, str], bool]:
    return {
        (o.check.op, o.check.target): o.allowed
        for o in run.observations
        if o.check.principal == principal and o.check.op in ops
    }


READS = (Op.READ, Op.CONSUME_OWN, Op.CONSUME_FOREIGN)


def test_what_each_topic_holds_is_what_the_acknowledged_writes_say(run: Run) -> None:
    acknowledged = {t: {"seed"} for t in FAMILIES}
    for o in run.observations:
        if o.check.op is Op.PRODUCE and o.allowed:
            acknowledged[o.check.target].add(o.check.principal)
    assert run.writers == acknowledged


@pytest.mark.parametrize("stranger", [ANONYMOUS, WRONG_PASSWORD])
def test_a_client_without_a_login_writes_nothing_and_reads_nothing(run: Run, stranger: str) -> None:
    assert not any(stranger in written for written in run.writers.values())
    tried = [o for o in run.observations if o.check.principal == stranger]
    assert len(tried) > 5 * len(FAMILIES)
    assert not [o.check for o in tried if o.allowed]


def test_an_inbox_cannot_read_join_or_acknowledge_for_another_municipality(run: Run) -> None:
    inbox = answers(run, "inbox-161", *READS, Op.PRODUCE)
    for op in READS:
        assert inbox.get((op, TOPICS.tasks("165", "jobcentre"))) in (False, None)
        assert inbox.get((op, TOPICS.escalations("165", "ssp"))) in (False, None)
    assert inbox[(Op.READ, TOPICS.tasks("165", "jobcentre"))] is False
    assert inbox[(Op.CONSUME_OWN, TOPICS.tasks("161", "youth_unit"))] is True
    joined = [
        o
        for o in run.observations
        if o.check.principal == "inbox-161" and o.check.group == "inbox.165"
    ]
    assert joined and not [o for o in joined if o.allowed]  # not even its own tasks in 165's group
    assert inbox[(Op.PRODUCE, TOPICS.task_acks_of("165"))] is False
    assert inbox[(Op.PRODUCE, TOPICS.task_acks_of("161"))] is True


@pytest.mark.parametrize("partner", PARTNERS)
def test_a_partner_reads_no_task_and_writes_only_its_own_topic(run: Run, partner: str) -> None:
    principal = partner_principal(partner)
    reads = answers(run, principal, *READS)
    assert reads and not [key for key, ok in reads.items() if ok]
    writes = answers(run, principal, Op.PRODUCE)
    assert [t for (_, t), ok in writes.items() if ok] == [TOPICS.partner_events(partner)]
