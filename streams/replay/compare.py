"""Two decisions of one event, under the policy in force and under a candidate: what differs.

Pure. A route is the unit of one municipality an event goes to; what it sees is the set of
field names (never their values). A hold is a route that waits for a consent (or waited, and
ran out: the preview says a consent is needed either way). Every change names the rule that
causes it: the candidate's rule for what it adds or changes, the current one for what it
removes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from streams.routing.decide import Decision, Hold, InboundEvent, Route

ChangeKind = Literal[
    "route_added", "route_removed", "field_added", "field_removed", "basis_changed",
    "hold_added", "hold_removed",
]  # fmt: skip
KINDS: tuple[ChangeKind, ...] = (
    "route_added", "route_removed", "field_added", "field_removed", "basis_changed",
    "hold_added", "hold_removed",
)  # fmt: skip


@dataclass(frozen=True, order=True)
class Change:
    """One difference for one event: ids, kinds, units and field names; no personal data."""

    event_id: str
    pseudonym: str
    event: str  # the schema name: dropout_notice, ...
    kind: ChangeKind
    unit: str
    kommunekode: str
    rule_id: str
    detail: str = ""  # a field name, a consent purpose, "old basis -> new basis"


def compare(event: InboundEvent, current: Decision, candidate: Decision) -> list[Change]:
    """Every difference between ``current`` and ``candidate`` for ``event``, in a fixed order."""
    changes: list[Change] = []

    def change(kind: ChangeKind, unit: str, kommunekode: str, rule: str, detail: str = "") -> None:
        changes.append(
            Change(event.event_id, event.pseudonym, event.name, kind, unit, kommunekode, rule,
                   detail)
        )  # fmt: skip

    before, after = _routes(current.routes), _routes(candidate.routes)
    for key in sorted(after.keys() - before.keys()):
        route = after[key]
        change("route_added", *key, route.rule_id, " ".join(sorted(route.details)))
    for key in sorted(before.keys() - after.keys()):
        change("route_removed", *key, before[key].rule_id)
    for key in sorted(before.keys() & after.keys()):
        old, new = before[key], after[key]
        for name in sorted(new.details.keys() - old.details.keys()):
            change("field_added", *key, new.rule_id, name)
        for name in sorted(old.details.keys() - new.details.keys()):
            change("field_removed", *key, new.rule_id, name)
        if old.basis != new.basis:
            change("basis_changed", *key, new.rule_id, f"{old.basis} -> {new.basis}")
    waited, waits = _holds(current), _holds(candidate)
    for unit, kommunekode, purpose in sorted(waits.keys() - waited.keys()):
        rule = waits[unit, kommunekode, purpose].rule_id
        change("hold_added", unit, kommunekode, rule, purpose)
    for unit, kommunekode, purpose in sorted(waited.keys() - waits.keys()):
        rule = waited[unit, kommunekode, purpose].rule_id
        change("hold_removed", unit, kommunekode, rule, purpose)
    return changes


def _routes(routes: Iterable[Route]) -> dict[tuple[str, str], Route]:
    """By (unit, kommunekode): one task each (its id is the event's for that unit)."""
    by_unit: dict[tuple[str, str], Route] = {}
    for route in routes:
        by_unit.setdefault((route.unit, route.kommunekode), route)
    return by_unit


def _holds(decision: Decision) -> dict[tuple[str, str, str], Hold]:
    """By (unit, kommunekode, purpose), waiting or run out."""
    found: dict[tuple[str, str, str], Hold] = {}
    for hold in (*decision.holds, *decision.expired):
        found.setdefault((hold.unit, hold.kommunekode, hold.purpose), hold)
    return found
