"""A routing decision's id: the same decision written twice has one id, another decision not."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import schemas
from streams.routing import outputs
from streams.routing.consent import ConsentState
from streams.routing.decide import Decision, InboundEvent, decide
from streams.routing.policy import load_policy
from tests.support import records
from tests.support.records import OCCURRED

POLICY = load_policy()
NOW = OCCURRED + dt.timedelta(minutes=5)


def _audit(event: InboundEvent, decision: Decision, now: dt.datetime) -> outputs.Output:
    return outputs.audit(
        "audit.routing", event, decision.outcome, decision.routes, decision.reason, decision,
        POLICY, now, None,
    )  # fmt: skip


def _decided() -> tuple[InboundEvent, Decision]:
    record = records.release_planning("prison", age=22, residence="167")
    event = InboundEvent("release_planning", record)
    return event, decide(event, ConsentState(), POLICY, NOW)


def test_the_same_decision_written_twice_has_one_id() -> None:
    event, decision = _decided()
    first = _audit(event, decision, NOW)
    again = _audit(event, decision, NOW + dt.timedelta(minutes=3))  # after a restart
    assert first.value != again.value  # decided_at differs
    assert first.header("ce_id") == again.header("ce_id")
    for out in (first, again):
        assert out.value is not None
        assert schemas.decision_id_of(schemas.decode(out.value).record) == out.header("ce_id")


def test_other_routes_or_another_outcome_give_another_id() -> None:
    event, decision = _decided()
    assert len(decision.routes) == 3
    all_routes = _audit(event, decision, NOW).header("ce_id")
    # The same event routed later, under the same policy, to one more unit: another decision.
    later = replace(decision, routes=decision.routes[:1])
    assert _audit(event, later, NOW).header("ce_id") != all_routes
    assert schemas.decision_id("e", "1", "routed", []) != schemas.decision_id("e", "1", "held", [])
    assert schemas.decision_id("e", "1", "routed", []) != schemas.decision_id(
        "e", "2", "routed", []
    )


def test_the_order_of_the_routes_does_not_matter_and_names_cannot_collide() -> None:
    assert schemas.decision_id("e", "1", "routed", ["a", "b"]) == schemas.decision_id(
        "e", "1", "routed", ["b", "a"]
    )
    # A joined string would make these two the same name.
    assert schemas.decision_id("e/1", "2", "routed", []) != schemas.decision_id(
        "e", "1/2", "routed", []
    )
