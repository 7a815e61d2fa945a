"""The comparison of a broker's answers with the ACL matrix catches both kinds of mistake."""

from __future__ import annotations

from bus.acls.matrix import matrix
from bus.topics import Topics
from tests.support.acl_observations import (
    CLUSTER_TARGET,
    Check,
    Observation,
    Op,
    counts,
    expected,
    mismatch_table,
    mismatches,
)

TOPICS = Topics()
MATRIX = matrix(TOPICS, ["demo-gym"])


def seen(
    principal: str, op: Op, target: str, allowed: bool, group: str | None = None
) -> Observation:
    return Observation(
        Check(principal, op, target, group),
        allowed,
        "ok" if allowed else "TOPIC_AUTHORIZATION_FAILED",
    )


def test_a_broker_that_agrees_with_the_matrix_shows_no_mismatch() -> None:
    agreeing = [
        seen("inbox-161", Op.CONSUME_OWN, TOPICS.tasks("161", "ssp"), True, "inbox.161"),
        seen("inbox-161", Op.CONSUME_FOREIGN, TOPICS.tasks("165", "ssp"), False, "inbox.165"),
        seen("inbox-161", Op.PRODUCE, TOPICS.task_acks_of("161"), True),
        seen("inbox-161", Op.PRODUCE, TOPICS.task_acks_of("165"), False),
        seen("partner-demo-gym", Op.PRODUCE, TOPICS.partner_events("demo-gym"), True),
        seen("ops", Op.DESCRIBE_ACLS, CLUSTER_TARGET, True),
        seen("admin", Op.DELETE, TOPICS.inbound_events, True),
        seen("ANONYMOUS", Op.READ, TOPICS.deadletter, False),
    ]
    assert mismatches(MATRIX, agreeing) == []


def test_an_unexpected_allow_and_an_unexpected_deny_are_both_caught_and_shown() -> None:
    # inbox-161 reads 165's tasks (a leak); the router may not write tasks (an outage).
    leak = seen("inbox-161", Op.READ, TOPICS.tasks("165", "jobcentre"), True)
    outage = seen("router", Op.PRODUCE, TOPICS.tasks("161", "youth_unit"), False)
    fine = seen("router", Op.PRODUCE, TOPICS.audit_routing, True)
    assert expected(MATRIX, leak.check) is False and expected(MATRIX, outage.check) is True

    found = mismatches(MATRIX, [fine, outage, leak])

    assert [m.observation for m in found] == [leak, outage]
    assert counts(found) == (1, 1)
    table = mismatch_table(found).splitlines()
    assert len(table) == 3
    assert table[1].split()[:3] == ["unexpected", "allow", "inbox-161"]
    assert "tasks.165.jobcentre" in table[1] and table[1].endswith("ok")
    assert table[2].split()[:3] == ["unexpected", "deny", "router"]
    assert table[2].endswith("TOPIC_AUTHORIZATION_FAILED")


def test_strangers_may_do_nothing_and_the_admin_everything() -> None:
    for op in Op:
        target = CLUSTER_TARGET if op in (Op.CREATE_ACL, Op.DESCRIBE_ACLS) else "deadletter"
        group = "inbox.161" if op in (Op.CONSUME_OWN, Op.CONSUME_FOREIGN) else None
        assert expected(MATRIX, Check("admin", op, target, group)) is True
        for stranger in ("ANONYMOUS", "router (wrong password)"):
            assert expected(MATRIX, Check(stranger, op, target, group)) is False
