"""Consents and events for one person, in any order: the router decides each in that order.

A hypothesis state machine drives the pure router (``Router.handle`` over in-memory tables)
with events that need consent, grants, withdrawals (also ones stamped ahead of the router's
clock, as a sender's fast clock would) and time passing, and checks every output against a
model: an event is routed on a consent only while it is granted and not withdrawn; a held
event is routed once, when a consent arrives; a withdrawal stops routing at once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import schemas
from bus.topics import Topics
from streams.routing.outputs import InMessage, Output
from streams.routing.policy import load_policy
from streams.routing.router import Router, SubjectStore
from streams.runtime.state import StagedTables
from tests.support import records

POLICY = load_policy()
TOPICS = Topics("t.")
START = records.OCCURRED
YOUTH_UNIT = TOPICS.tasks("161", "youth_unit")


def _message(name: str, record: dict[str, Any], offset: int) -> InMessage:
    return InMessage(
        TOPICS.inbound_events,
        0,
        offset,
        record["envelope"]["subject"]["pseudonym"].encode(),
        schemas.encode(name, record),
        list(schemas.cloudevent_headers(record)),
    )


def _decoded(output: Output) -> dict[str, Any]:
    assert output.value is not None
    return schemas.decode(output.value).record


class ConsentOrder(RuleBasedStateMachine):
    """One adult who moved to Glostrup: their handover needs consent 'adult_relocation'."""

    @initialize()
    def start(self) -> None:
        self.now = START
        self.router = Router(POLICY, TOPICS, records.senders(), clock=lambda: self.now)
        self.store = SubjectStore(StagedTables.in_memory(*SubjectStore.TABLES))
        self.pseudonym = uuid.uuid4().hex * 2
        self.offset = 0
        # the model
        self.active: set[str] = set()  # the consent ids that cover the handover now
        self.held: set[str] = set()  # events waiting for a consent
        self.tasks: dict[str, str] = {}  # task id -> event id, everything routed so far

    def _handle(self, name: str, record: dict[str, Any]) -> list[Output]:
        self.offset += 1
        out = self.router.handle(_message(name, record, self.offset), self.store)
        assert not [o for o in out if o.topic == TOPICS.deadletter], [_decoded(o) for o in out]
        return out

    def _routed(self, out: list[Output]) -> dict[str, dict[str, Any]]:
        """The tasks among ``out``, by event id; none repeats a task already routed."""
        routed = {}
        for task in (o for o in out if o.topic == YOUTH_UNIT):
            value = _decoded(task)
            assert value["task_id"] not in self.tasks, "a task routed twice"
            self.tasks[value["task_id"]] = value["event_id"]
            routed[value["event_id"]] = value
        return routed

    def _envelope(self, name: str, occurred_at: dt.datetime, **kw: Any) -> dict[str, Any]:
        return records.envelope(
            name, age=20, occurred_at=occurred_at, pseudonym=self.pseudonym, **kw
        )

    @rule()
    def handover(self) -> None:
        record = records.handover("municipality", to="161", occurred_at=self.now, age=20)
        record["envelope"]["subject"]["pseudonym"] = self.pseudonym
        event_id = record["envelope"]["event_id"]
        routed = self._routed(self._handle("handover", record))
        if not self.active:
            assert routed == {}, "routed without an active consent"
            self.held.add(event_id)
        else:
            assert set(routed) == {event_id}
            assert routed[event_id]["consent_id"] in self.active

    @rule()
    def grant(self) -> None:
        consent_id = f"c-{uuid.uuid4().hex[:8]}"
        record = {
            "envelope": self._envelope(
                "consent_granted", self.now, source_kind="municipality", source_id="161"
            ),
            "consent_id": consent_id,
            "purpose": "adult_relocation",
            "recipient_unit": "youth_unit",
            "recipient_kommunekode": "161",
            "given_by": "young_person",
            "valid_until": (self.now + dt.timedelta(days=365)).date(),
            "evidence_reference": "doc-1",
        }
        routed = self._routed(self._handle("consent_granted", record))
        assert set(routed) == self.held, "a held event not released, or a stranger routed"
        assert all(task["consent_id"] == consent_id for task in routed.values())
        self.held.clear()
        self.active.add(consent_id)

    @rule(ahead=st.sampled_from([dt.timedelta(0), dt.timedelta(seconds=2), dt.timedelta(hours=1)]))
    def withdraw(self, ahead: dt.timedelta) -> None:
        """Withdraw the consent (stamped up to an hour ahead of the router's clock)."""
        record = {
            "envelope": self._envelope(
                "consent_withdrawn", self.now + ahead, source_kind="municipality", source_id="161"
            ),
            "consent_id": min(self.active, default="c-none"),
            "purpose": "adult_relocation",
            "recipient_unit": "youth_unit",
            "recipient_kommunekode": "161",
            "withdrawn_by": "young_person",
            "evidence_reference": "doc-2",
        }
        assert self._routed(self._handle("consent_withdrawn", record)) == {}
        self.active.clear()  # it withdraws every earlier consent for the purpose and unit

    @rule(seconds=st.integers(min_value=1, max_value=3600))
    def time_passes(self, seconds: int) -> None:
        self.now += dt.timedelta(seconds=seconds)

    @invariant()
    def held_events_are_kept(self) -> None:
        if hasattr(self, "store"):
            kept = {h.event_id for h in self.store.held(self.pseudonym)}
            assert kept == self.held


ConsentOrder.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
test_consent_order = ConsentOrder.TestCase
