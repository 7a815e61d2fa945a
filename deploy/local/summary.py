"""What the bus did, as a fold over its topics: accepted, routed, held, denied, dead-lettered.

:class:`Tally` is pure: it is given decoded records (``add``) and the edge's answers to the
sample traffic (``rejected``), and renders a summary. Only pseudonyms and event ids pass
through it, never a CPR number, and it prints counts only.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas import KOMMUNEKODER, PARTNER_KINDS, UNITS

CONSENT_EVENTS = ("consent_granted", "consent_withdrawn")
# Schemas that several partner kinds share, told apart by the kind of sender.
_KIND_BY_SOURCE = {
    ("release_planning", "prison"): "release_planning_prison",
    ("release_planning", "psychiatric_ward"): "release_planning_psychiatry",
    ("handover", "uu_centre"): "handover_uu",
    ("handover", "municipality"): "handover_municipality",
}
_UNIT_TITLES = {
    "youth_unit": "youth",
    "jobcentre": "jobcentre",
    "family_services": "family",
    "social_services": "social",
    "ssp": "ssp",
}


def partner_kind(name: str, record: Mapping[str, Any]) -> str:
    """The partner kind an inbound record was sent as, e.g. release_planning_prison."""
    source_kind = str(record["envelope"]["source"]["kind"])
    return _KIND_BY_SOURCE.get((name, source_kind), name)


@dataclass(frozen=True)
class Awaited:
    """A consent a held event waits for: for which purpose, to which unit in which
    municipality (a hold of the decision record, ``routing_decision`` v2)."""

    purpose: str
    unit: str
    kommunekode: str


@dataclass(frozen=True)
class Decided:
    """The latest routing decision on one event."""

    outcome: str
    pseudonym: str
    awaiting: tuple[Awaited, ...] = ()  # the consents it is held for, in the router's order


@dataclass
class Tally:
    accepted: Counter[str] = field(default_factory=Counter)  # per partner kind
    needs_decision: set[str] = field(default_factory=set)  # accepted partner event ids
    decided: dict[str, Decided] = field(default_factory=dict)  # event id -> latest decision
    released: set[str] = field(default_factory=set)  # held, then routed by a consent
    routes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kommunekode, unit)
    dead_letters: Counter[str] = field(default_factory=Counter)  # per component
    dead_letter_ids: set[str] = field(default_factory=set)
    escalated_tasks: set[str] = field(default_factory=set)
    # kommunekode -> (event id, unit, task id) of the first event routed there, to follow
    examples: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    overdue_handovers: set[str] = field(default_factory=set)
    rejected_http: Counter[int] = field(default_factory=Counter)  # per HTTP status
    rejected_rows: int = 0  # file drop rows in rejects files
    undecodable: int = 0

    # -- the fold ---------------------------------------------------------------------------
    def add(self, name: str, record: Mapping[str, Any]) -> None:
        """One decoded record from any topic the summary reads."""
        if name in PARTNER_KINDS.values():
            self.accepted[partner_kind(name, record)] += 1
            if name not in CONSENT_EVENTS:
                self.needs_decision.add(str(record["envelope"]["event_id"]))
        elif name == "routing_decision":
            self._decision(record)
        elif name == "dead_letter":
            self.dead_letters[str(record["component"])] += 1
            if record.get("event_id"):
                self.dead_letter_ids.add(str(record["event_id"]))
        elif name == "task_escalated":
            self.escalated_tasks.add(str(record["task_id"]))
        elif name == "handover_status":
            task_id = str(record["task_id"])
            if record["status"] == "not_taken_over":
                self.overdue_handovers.add(task_id)
            else:
                self.overdue_handovers.discard(task_id)

    def _decision(self, record: Mapping[str, Any]) -> None:
        event_id, outcome = str(record["event_id"]), str(record["decision"])
        before = self.decided.get(event_id)
        if outcome == "duplicate" and before is not None:
            return  # a replay changes nothing
        if before is not None and before.outcome == "held" and outcome == "routed":
            self.released.add(event_id)
        pseudonym = str(record["subject_pseudonym"])
        awaiting = tuple(
            Awaited(str(hold["purpose"]), str(hold["unit"]), str(hold["kommunekode"]))
            for hold in record["holds"]  # empty when a v1 record was read: none to release
        )
        self.decided[event_id] = Decided(outcome, pseudonym, awaiting)
        for route in record["routes"]:
            self.routes[(str(route["kommunekode"]), str(route["unit"]))] += 1
            if outcome == "routed":
                self.examples.setdefault(
                    str(route["kommunekode"]), (event_id, str(route["unit"]), str(route["task_id"]))
                )

    # -- what it adds up to -----------------------------------------------------------------
    def outcomes(self) -> Counter[str]:
        return Counter(d.outcome for d in self.decided.values())

    def held(self) -> dict[str, Decided]:
        """Events still waiting for consent, by event id."""
        return {e: d for e, d in self.decided.items() if d.outcome == "held"}

    def undecided(self) -> set[str]:
        """Accepted partner events with neither a decision nor a dead letter yet."""
        return self.needs_decision - self.decided.keys() - self.dead_letter_ids

    def render(self, now: dt.datetime | None = None, follow_in: str | None = None) -> str:
        """The summary; its "follow" line names an event routed to ``follow_in`` if any."""
        now = now or dt.datetime.now()
        outcomes = self.outcomes()
        rejected = sum(self.rejected_http.values()) + self.rejected_rows
        edge = [f"HTTP {status}: {n}" for status, n in sorted(self.rejected_http.items())]
        edge.append(f"file drop rows: {self.rejected_rows}")
        lines = [
            f"--- ungebus at {now:%H:%M:%S} ---",
            f"accepted      {sum(self.accepted.values()):4d}  partner events",
            *_wrapped(_per(self.accepted, list(PARTNER_KINDS))),
            f"rejected      {rejected:4d}  invalid input refused at the edge ({', '.join(edge)})",
            f"routed        {outcomes['routed']:4d}  events, {sum(self.routes.values())} tasks "
            f"(incl. {len(self.released)} released by a consent)",
            f"held          {outcomes['held']:4d}  waiting for consent",
            f"denied        {outcomes['denied']:4d}  no rule gives a basis",
            f"purged        {outcomes['purged']:4d}  no consent came within the hold",
            f"duplicate     {outcomes['duplicate']:4d}  a repeated event id, nothing new",
            f"dead-lettered {sum(self.dead_letters.values()):4d}  "
            + (
                f"by {_per(self.dead_letters, sorted(self.dead_letters))}"
                if self.dead_letters
                else "none"
            ),
            f"escalated     {len(self.escalated_tasks):4d}  tasks nobody took over in time "
            f"(handovers between municipalities overdue: {len(self.overdue_handovers)})",
            f"undecided     {len(self.undecided()):4d}  accepted, no decision yet",
        ]
        example = self.examples.get(follow_in or "") or next(iter(self.examples.values()), None)
        if example is not None:
            event_id = example[0]
            lines.append(f"follow        .venv/bin/ungebus trace {event_id}  (one routed event)")
        return "\n".join(lines + self._routes_table())

    def _routes_table(self) -> list[str]:
        codes = sorted({code for code, _unit in self.routes})
        if not codes:
            return []
        header = f"  {'tasks per municipality':<26}" + "".join(
            f"{_UNIT_TITLES[u]:>10}" for u in UNITS
        )
        rows = [
            f"  {code} {KOMMUNEKODER.get(code, ''):<22}"
            + "".join(f"{self.routes[(code, unit)]:>10}" for unit in UNITS)
            for code in codes
        ]
        return [header, *rows]


def _wrapped(text: str) -> list[str]:
    return textwrap.wrap(text, width=98, initial_indent=" " * 20, subsequent_indent=" " * 20)


def _per(counts: Mapping[str, int], order: list[str]) -> str:
    return ", ".join(f"{key} {counts[key]}" for key in order if counts.get(key))
