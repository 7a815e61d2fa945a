"""Properties of decide() over generated events and consent states (hypothesis)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.domain import KOMMUNEKODER, UNITS
from streams.routing.consent import Consent, ConsentState
from streams.routing.decide import InboundEvent, decide
from streams.routing.policy import load_policy
from tests.support import records

POLICY = load_policy()
PURPOSES = sorted(POLICY.purposes)
RULES = {rule.id: rule for rule in POLICY.rules}
KOMMUNER = sorted(KOMMUNEKODER)
START = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)


@st.composite
def events(draw: st.DrawFn) -> InboundEvent:
    kind = draw(st.sampled_from(["dropout", "prison", "psychiatry", "uu", "moved", "absence"]))
    common: dict[str, Any] = {
        "age": draw(st.integers(15, 29)),
        "residence": draw(st.sampled_from([*KOMMUNER, "101"])),
        "occurred_at": START + dt.timedelta(minutes=draw(st.integers(0, 60 * 24 * 200))),
    }
    if kind == "dropout":
        return InboundEvent("dropout_notice", records.dropout_notice(**common))
    if kind in ("prison", "psychiatry"):
        setting = "prison" if kind == "prison" else "psychiatric_ward"
        return InboundEvent("release_planning", records.release_planning(setting, **common))
    if kind == "absence":
        percent = draw(st.floats(0, 100))
        return InboundEvent("school_absence_signal", records.school_absence(percent, **common))
    origin = "uu" if kind == "uu" else "municipality"
    to = draw(st.sampled_from([*KOMMUNER, "101"]))
    return InboundEvent("handover", records.handover(origin, to=to, **common))


@st.composite
def consent_states(draw: st.DrawFn) -> ConsentState:
    consents = []
    for i in range(draw(st.integers(0, 6))):
        granted = START + dt.timedelta(days=draw(st.integers(0, 250)))
        withdrawn = draw(st.none() | st.integers(0, 100))
        consents.append(
            Consent(
                consent_id=f"c-{i}",
                purpose=draw(st.sampled_from(PURPOSES)),
                unit=draw(st.sampled_from(UNITS)),
                kommunekode=draw(st.sampled_from(KOMMUNER)),
                given_by=draw(st.sampled_from(["young_person", "custodial_parent"])),
                granted_at=granted,
                valid_until=granted.date() + dt.timedelta(days=draw(st.integers(0, 400))),
                withdrawn_at=None if withdrawn is None else granted + dt.timedelta(days=withdrawn),
            )
        )
    return ConsentState(tuple(consents))


nows = st.integers(0, 60 * 24 * 300).map(lambda m: START + dt.timedelta(minutes=m))


@settings(max_examples=400, deadline=None)
@given(events(), consent_states(), nows)
def test_no_route_rests_on_consent_that_is_not_active(
    event: InboundEvent, consents: ConsentState, now: dt.datetime
) -> None:
    decision = decide(event, consents, POLICY, now)
    by_id = {c.consent_id: c for c in consents.consents}
    for route in decision.routes:
        rule = RULES[route.rule_id]
        purpose = rule.consent_purpose or (rule.with_consent and rule.with_consent.purpose)
        if rule.needs_consent:
            assert route.consent_id is not None
        if route.consent_id is not None:
            used = by_id[route.consent_id]
            assert used.covers(str(purpose), route.unit, route.kommunekode)
            assert used.active_at(now, event.birth_date)


@settings(max_examples=400, deadline=None)
@given(events(), consent_states(), nows)
def test_no_field_outside_the_allow_list_ever(
    event: InboundEvent, consents: ConsentState, now: dt.datetime
) -> None:
    for route in decide(event, consents, POLICY, now).routes:
        rule = RULES[route.rule_id]
        allowed = set(rule.fields)
        if rule.with_consent is not None and route.consent_id is not None:
            allowed |= set(rule.with_consent.fields)
        assert set(route.details) <= allowed
        assert route.unit == rule.unit


@settings(max_examples=200, deadline=None)
@given(events(), consent_states(), nows)
def test_same_inputs_same_decision(
    event: InboundEvent, consents: ConsentState, now: dt.datetime
) -> None:
    assert decide(event, consents, POLICY, now) == decide(event, consents, POLICY, now)


@settings(max_examples=200, deadline=None)
@given(events(), consent_states(), nows)
def test_every_route_goes_to_a_municipality_on_the_bus_and_is_due_after_the_event(
    event: InboundEvent, consents: ConsentState, now: dt.datetime
) -> None:
    for route in decide(event, consents, POLICY, now).routes:
        assert route.kommunekode in KOMMUNEKODER
        assert route.due_by >= event.occurred_at
