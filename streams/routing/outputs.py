"""What the router writes: routed tasks and audit records, as Kafka records (dead letters:
``streams.routing.dead_letters``).

The wire boundary: decisions become Avro records here (and only here), with CloudEvents
headers. No CPR number ever goes into a key or a header; the key is the subject pseudonym.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import schemas
from bus.limits import RecordLimits
from schemas.domain import event_type_of
from streams.routing.decide import Decision, Hold, InboundEvent, Route
from streams.routing.policy import CONSENT_PREFIX, Policy

COMPONENT = "router"
# Details that stay clear beside the sealed ones: routing facts, of the class of the task's own
# kommunekode. The handover tracker tells the sending municipality from ``from_kommunekode``
# and holds no data keys.
CLEAR_DETAILS = frozenset({"from_kommunekode"})
Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class InMessage:
    """A record as consumed: where it came from, and its bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp: float | None = None  # when it was published, seconds since the epoch

    def header(self, name: str) -> str | None:
        return _header(self.headers, name)

    @property
    def traceparent(self) -> str | None:
        return self.header("traceparent")


@dataclass(frozen=True)
class Output:
    """One record to write: topic, key, Avro wire bytes (None: a tombstone), headers."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    partition: int | None = None  # None: the partitioner's choice (murmur2 of the key)
    # What operators may see of it (span attributes): ids, kinds, units; never personal data.
    labels: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return _header(self.headers, name)


class TooLarge(Exception):
    """A record whose outputs would be larger than the producer takes."""


def check_sizes(written: list[Output], limits: RecordLimits) -> list[Output]:
    """``written``, unless one of them is too large for the producer (:class:`TooLarge`)."""
    for output in written:
        too_large = limits.too_large(output.topic, output.key, output.value, output.headers)
        if too_large is not None:
            raise TooLarge(f"its outputs are too large to write: {too_large}")
    return written


def _header(headers: Headers, name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode(errors="replace")
    return None


def routed_task(
    topic: str,
    event: InboundEvent,
    route: Route,
    decision: Decision,
    now: dt.datetime,
    traceparent: str | None,
    sealed_details: bytes | None = None,
) -> Output:
    """The task for one route. With ``sealed_details`` (the route's details sealed with the
    person's key) the plain ``details`` map keeps only the routing facts of
    :data:`CLEAR_DETAILS`."""
    record = {
        "task_id": route.task_id,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "unit": route.unit,
        "kommunekode": route.kommunekode,
        "basis": _basis(route),
        "consent_id": route.consent_id,
        "due_by": route.due_by,
        "priority": route.priority,
        "policy_version": decision.policy_version,
        "subject_pseudonym": event.pseudonym,
        "details": dict(route.details)
        if sealed_details is None
        else {k: v for k, v in route.details.items() if k in CLEAR_DETAILS},
        "sealed_details": sealed_details,
        "routed_at": now,
    }
    labels = {
        "ungebus.record": "routed_task",
        "ungebus.event_id": event.event_id,
        "ungebus.task_id": route.task_id,
        "ungebus.unit": route.unit,
        "ungebus.kommunekode": route.kommunekode,
        "ungebus.basis": route.basis,
        "ungebus.rule_id": route.rule_id,
    }
    return bus_record(
        topic, "routed_task", record, route.task_id, event.pseudonym, now, traceparent,
        labels=labels,
    )  # fmt: skip


def audit(
    topic: str,
    event: InboundEvent,
    outcome: str,
    routes: Sequence[Route],
    reason: str,
    decision: Decision | None,
    policy: Policy,
    now: dt.datetime,
    traceparent: str | None,
) -> Output:
    """One routing decision, as the audit trail keeps it: who received what, and why."""
    held_until = min((h.until for h in decision.holds), default=None) if decision else None
    record = {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "decision": outcome,
        "routes": [
            {
                "unit": r.unit,
                "kommunekode": r.kommunekode,
                "basis": _basis(r),
                "consent_id": r.consent_id,
                "task_id": r.task_id,
                "fields": sorted(r.details),
                "rule_id": r.rule_id,
            }
            for r in routes
        ],
        "reason": reason,
        "policy_version": policy.version,
        "decided_at": now,
        "held_until": held_until,
        "subject_pseudonym": event.pseudonym,
        # The facts of the reason text, for readers that act on them (version 2).
        "holds": [_hold(h) for h in decision.holds] if decision else [],
        "expired": [_hold(h) for h in decision.expired] if decision else [],
    }
    # The same decision written twice (a restart re-handles a window) keeps one id.
    audit_id = schemas.decision_id(
        event.event_id, policy.version, outcome, (r.task_id for r in routes)
    )
    labels = {
        "ungebus.record": "routing_decision",
        "ungebus.event_id": event.event_id,
        "ungebus.outcome": outcome,
    }
    return bus_record(
        topic, "routing_decision", record, audit_id, event.pseudonym, now, traceparent,
        labels=labels,
    )  # fmt: skip


def _hold(hold: Hold) -> dict[str, Any]:
    return {
        "rule_id": hold.rule_id,
        "purpose": hold.purpose,
        "unit": hold.unit,
        "kommunekode": hold.kommunekode,
        "until": hold.until,
    }


def _basis(route: Route) -> dict[str, str]:
    kind = "consent" if route.basis.startswith(CONSENT_PREFIX) else "statute"
    return {"kind": kind, "id": route.basis, "citation": route.citation}


def bus_record(
    topic: str,
    name: str,
    record: Mapping[str, Any],
    ce_id: str,
    pseudonym: str,
    now: dt.datetime,
    traceparent: str | None,
    component: str = COMPONENT,
    labels: Mapping[str, str] | None = None,
) -> Output:
    """A bus event about one person: key = pseudonym, CloudEvents headers, trace context."""
    return Output(
        topic,
        pseudonym.encode(),
        schemas.encode(name, record),
        record_headers(name, ce_id, pseudonym, now, traceparent, component),
        labels=labels or {"ungebus.record": name},
    )


def record_headers(
    name: str,
    ce_id: str,
    pseudonym: str | None,
    now: dt.datetime,
    traceparent: str | None,
    component: str,
) -> Headers:
    headers = schemas.build_headers(
        ce_id=ce_id,
        ce_type=_event_type(name),
        ce_source=f"/ungebus/{component}",
        ce_time=now,
        ce_subject=pseudonym or "",
    )
    if pseudonym is None:
        headers = [(k, v) for k, v in headers if k != "ce_subject"]
    if traceparent:
        headers.append(("traceparent", traceparent.encode()))
    return headers


@cache  # a handful of record names, asked for every output
def _event_type(name: str) -> str:
    return str(event_type_of(name))
