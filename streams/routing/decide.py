"""The routing decision: ``decide(event, consents, policy, now) -> Decision``. Pure: no I/O.

For each rule of the policy that matches the event, the event is routed to the rule's unit (on
a statutory basis, or on an active consent), held (the rule needs a consent that is not there
yet), or, when the hold has run out, purged. An event no rule matches is denied, with the reason.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.cpr import age_on
from schemas.paths import to_json, value_at
from streams.routing.consent import ConsentState
from streams.routing.policy import RESIDENCE, Policy, Rule, TakeOverWithin, known_municipality

TASK_NAMESPACE = uuid.UUID("3c8f4b8e-6a8e-4d55-9a57-2d1f0a6c2b61")

Outcome = Literal["routed", "held", "denied", "purged"]


@dataclass(frozen=True)
class InboundEvent:
    """A decoded partner event: its schema name and its Avro record.

    The envelope values the router asks for many times per event are read once, here (a
    decoded record always has them, and it is never changed).
    """

    name: str
    record: Mapping[str, Any]
    event_id: str = field(init=False, repr=False, compare=False)
    event_type: str = field(init=False, repr=False, compare=False)
    pseudonym: str = field(init=False, repr=False, compare=False)
    birth_date: dt.date = field(init=False, repr=False, compare=False)
    occurred_at: dt.datetime = field(init=False, repr=False, compare=False)
    source_kind: str = field(init=False, repr=False, compare=False)
    age: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        envelope = self.envelope
        subject = envelope["subject"]
        self._set("event_id", str(envelope["event_id"]))
        self._set("event_type", str(envelope["event_type"]))
        self._set("pseudonym", str(subject["pseudonym"]))
        self._set("birth_date", subject["birth_date"])
        self._set("occurred_at", envelope["occurred_at"])
        self._set("source_kind", str(envelope["source"]["kind"]))
        self._set("age", age_on(self.birth_date, self.occurred_at.date()))

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)  # frozen: how a dataclass sets a field once

    @property
    def envelope(self) -> Mapping[str, Any]:
        envelope: Mapping[str, Any] = self.record["envelope"]
        return envelope


@dataclass(frozen=True)
class Route:
    """A task for one unit in one municipality, with only the fields it may see."""

    task_id: str
    rule_id: str
    unit: str
    kommunekode: str
    basis: str
    citation: str
    consent_id: str | None
    details: Mapping[str, str]  # allowed dotted path -> JSON value
    due_by: dt.datetime
    priority: str


@dataclass(frozen=True)
class Hold:
    """A route waiting for a consent: purpose, to which unit in which municipality, until when."""

    rule_id: str
    unit: str
    kommunekode: str
    purpose: str
    until: dt.datetime


@dataclass(frozen=True)
class Denial:
    rule_id: str | None
    reason: str


@dataclass(frozen=True)
class Decision:
    event_id: str
    policy_version: str
    routes: tuple[Route, ...] = ()
    holds: tuple[Hold, ...] = ()
    expired: tuple[Hold, ...] = ()
    denials: tuple[Denial, ...] = ()

    @property
    def outcome(self) -> Outcome:
        """held while any route still waits; else routed if anything went; else purged/denied."""
        if self.holds:
            return "held"
        if self.routes:
            return "routed"
        return "purged" if self.expired else "denied"

    @property
    def reason(self) -> str:
        parts = [f"{r.unit}@{r.kommunekode} on {r.basis} (rule {r.rule_id})" for r in self.routes]
        parts += [
            f"waiting for consent '{h.purpose}' to {h.unit}@{h.kommunekode} until "
            f"{h.until.isoformat()} (rule {h.rule_id})"
            for h in self.holds
        ]
        parts += [
            f"no consent '{h.purpose}' to {h.unit}@{h.kommunekode} arrived by "
            f"{h.until.isoformat()}: purged (rule {h.rule_id})"
            for h in self.expired
        ]
        parts += [d.reason for d in self.denials]
        return "; ".join(parts)


def decide(
    event: InboundEvent, consents: ConsentState, policy: Policy, now: dt.datetime
) -> Decision:
    """Which units must act on ``event`` now, on which basis, seeing which fields."""
    candidates = policy.candidates(event.name, event.source_kind, event.age)
    rules = [rule for rule in candidates if _matches_when(rule, event)]
    if not rules:
        return Decision(
            event.event_id,
            policy.version,
            denials=(Denial(None, _no_rule_reason(event, policy)),),
        )
    routes: list[Route] = []
    holds: list[Hold] = []
    expired: list[Hold] = []
    denials: list[Denial] = []
    rendered: dict[str, str] = {}  # path -> JSON value, for the routes of this event
    for rule in rules:
        kommunekode = _municipality(rule, event)
        if not known_municipality(kommunekode):
            denials.append(
                Denial(rule.id, f"municipality {kommunekode} is not on this bus (rule {rule.id})")
            )
            continue
        assert isinstance(kommunekode, str)
        outcome = _apply_rule(rule, kommunekode, event, consents, policy, now, rendered)
        if isinstance(outcome, Route):
            routes.append(outcome)
        elif outcome.until > now:
            holds.append(outcome)
        else:
            expired.append(outcome)
    return Decision(
        event.event_id, policy.version, tuple(routes), tuple(holds), tuple(expired), tuple(denials)
    )


def task_id(event_id: str, kommunekode: str, unit: str) -> str:
    """Deterministic: the same event for the same unit is always the same task."""
    return str(uuid.uuid5(TASK_NAMESPACE, f"{event_id}/{kommunekode}/{unit}"))


def _apply_rule(
    rule: Rule,
    kommunekode: str,
    event: InboundEvent,
    consents: ConsentState,
    policy: Policy,
    now: dt.datetime,
    rendered: dict[str, str],
) -> Route | Hold:
    paths = rule.detail_paths
    consent_id = None
    clock_starts = event.occurred_at
    purpose = rule.consent_purpose
    if purpose is not None:
        consent = consents.active(purpose, rule.unit, kommunekode, now, event.birth_date)
        if consent is None:
            until = event.occurred_at + dt.timedelta(days=policy.hold_for_days)
            return Hold(rule.id, rule.unit, kommunekode, purpose, until)
        consent_id = consent.consent_id
        clock_starts = max(clock_starts, consent.granted_at)
    elif rule.with_consent is not None:
        extra = consents.active(
            rule.with_consent.purpose, rule.unit, kommunekode, now, event.birth_date
        )
        if extra is not None:
            paths = rule.detail_paths_with_consent
            consent_id = extra.consent_id
    return Route(
        task_id=task_id(event.event_id, kommunekode, rule.unit),
        rule_id=rule.id,
        unit=rule.unit,
        kommunekode=kommunekode,
        basis=rule.basis,
        citation=policy.citation(rule.basis),
        consent_id=consent_id,
        details=_details(event.record, paths, rendered),
        due_by=due_by(clock_starts, rule.take_over_within),
        priority=rule.priority,
    )


def _details(
    record: Mapping[str, Any], paths: tuple[str, ...], rendered: dict[str, str]
) -> dict[str, str]:
    """Path -> JSON value; ``rendered`` keeps those another route of the event already wrote
    (the units an event goes to mostly see the same fields)."""
    details = {}
    for path in paths:
        text = rendered.get(path)
        if text is None:
            text = rendered[path] = to_json(value_at(record, path))
        details[path] = text
    return details


def _matches_when(rule: Rule, event: InboundEvent) -> bool:
    """Whether ``event`` meets every ``when`` condition of ``rule`` (its kind, source and age
    fit already: ``Policy.candidates``)."""
    for path, condition in rule.when.items():
        value = value_at(event.record, path)
        if isinstance(condition, str | int | float | bool):
            if value != condition:
                return False
        elif not condition.covers(value):
            return False
    return True


def _municipality(rule: Rule, event: InboundEvent) -> object:
    if rule.municipality == RESIDENCE:
        return event.envelope["subject"]["residence_kommunekode"]
    return value_at(event.record, rule.municipality)


def _no_rule_reason(event: InboundEvent, policy: Policy) -> str:
    return (
        f"no rule in policy {policy.version} routes {event.name} from a {event.source_kind} "
        f"about a {event.age}-year-old under these conditions: no legal basis to pass it on"
    )


def due_by(start: dt.datetime, within: TakeOverWithin) -> dt.datetime:
    """When the unit must have taken over. Working days skip Saturdays and Sundays."""
    if within.hours is not None:
        return start + dt.timedelta(hours=within.hours)
    if within.days is not None:
        return start + dt.timedelta(days=within.days)
    assert within.working_days is not None
    day, left = start, within.working_days
    while left > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day
