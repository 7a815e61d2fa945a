"""decide(): every event kind to the right unit, on the right basis, with only allowed fields."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from streams.routing.consent import ConsentState
from streams.routing.decide import Decision, InboundEvent, decide, task_id
from streams.routing.policy import Policy, load_policy
from tests.support import records
from tests.support.records import OCCURRED, consent

POLICY = load_policy()
NOW = OCCURRED + dt.timedelta(minutes=5)


def _decide(name: str, record: dict[str, Any], *consents: Any, now: dt.datetime = NOW) -> Decision:
    state = ConsentState(tuple(consents))
    return decide(InboundEvent(name, record), state, POLICY, now)


def _routes(decision: Decision) -> set[tuple[str, str, str]]:
    return {(r.unit, r.kommunekode, r.basis) for r in decision.routes}


def test_dropout_of_a_16_year_old_goes_to_the_youth_unit_within_5_working_days() -> None:
    decision = _decide("dropout_notice", records.dropout_notice(age=16))
    assert decision.outcome == "routed"
    assert _routes(decision) == {("youth_unit", "161", "kui_12c")}
    (route,) = decision.routes
    assert route.citation.startswith("Lov om kommunal indsats for unge under 25")
    assert route.due_by == dt.datetime(2026, 11, 9, 9, 30, tzinfo=dt.UTC)  # Mon + 5 working days
    assert route.priority == "high"
    # Reason and contact are details beyond status: not without consent.
    assert "reason_category" not in route.details
    assert "institution_contact" not in route.details
    assert route.details["status"] == '"dropped_out"'
    assert route.consent_id is None


def test_consent_for_dropout_details_adds_the_reason() -> None:
    given = consent("dropout_details", "youth_unit", consent_id="c-42")
    (route,) = _decide("dropout_notice", records.dropout_notice(age=16), given).routes
    assert route.details["reason_category"] == '"health"'
    assert "institution_contact.name" not in route.details  # the record path covers it
    assert "institution_contact" in route.details
    assert route.consent_id == "c-42"


def test_consent_to_another_municipality_does_not_count() -> None:
    elsewhere = consent("dropout_details", "youth_unit", kommunekode="165")
    (route,) = _decide("dropout_notice", records.dropout_notice(age=16), elsewhere).routes
    assert "reason_category" not in route.details


def test_dropout_of_a_26_year_old_is_denied_for_lack_of_basis() -> None:
    decision = _decide("dropout_notice", records.dropout_notice(age=26))
    assert decision.outcome == "denied"
    assert not decision.routes
    assert "no legal basis" in decision.reason and "26-year-old" in decision.reason


def test_release_from_prison_goes_to_jobcentre_social_services_and_youth_unit() -> None:
    decision = _decide("release_planning", records.release_planning("prison", age=22))
    assert _routes(decision) == {
        ("jobcentre", "161", "rpl_115"),
        ("social_services", "161", "rpl_115"),
        ("youth_unit", "161", "rpl_115"),
    }
    for route in decision.routes:
        assert not any(path.startswith("sensitive") for path in route.details)


def test_release_from_prison_of_a_26_year_old_skips_the_youth_unit() -> None:
    decision = _decide("release_planning", records.release_planning("prison", age=26))
    assert {r.unit for r in decision.routes} == {"jobcentre", "social_services"}


def test_discharge_from_psychiatry_routes_social_services_and_holds_the_mentor() -> None:
    decision = _decide("release_planning", records.release_planning("psychiatric_ward"))
    assert decision.outcome == "held"
    assert _routes(decision) == {("social_services", "161", "psyk_13a")}
    (hold,) = decision.holds
    assert (hold.unit, hold.purpose) == ("jobcentre", "discharge_mentor")
    assert hold.until == OCCURRED + dt.timedelta(days=POLICY.hold_for_days)


def test_held_mentor_route_goes_once_consent_arrives_with_its_own_clock() -> None:
    later = OCCURRED + dt.timedelta(days=3)  # a Thursday
    given = consent("discharge_mentor", "jobcentre", consent_id="c-7", granted_at=later)
    decision = _decide(
        "release_planning", records.release_planning("psychiatric_ward"), given, now=later
    )
    assert decision.outcome == "routed"
    mentor = next(r for r in decision.routes if r.unit == "jobcentre")
    assert mentor.basis == "consent:discharge_mentor" and mentor.consent_id == "c-7"
    assert mentor.due_by == dt.datetime(2026, 11, 12, 9, 30, tzinfo=dt.UTC)  # Thu + 5 w.d.


def test_hold_that_runs_out_is_purged() -> None:
    record = records.handover("municipality", to="161", age=20)
    decision = _decide("handover", record, now=OCCURRED + dt.timedelta(days=31))
    assert decision.outcome == "purged"
    assert "adult_relocation" in decision.reason and "purged" in decision.reason


def test_withdrawn_consent_no_longer_routes() -> None:
    given = consent("adult_relocation", "youth_unit")
    state = ConsentState((given,)).withdrawn(
        "c-1", "adult_relocation", "youth_unit", "161", OCCURRED + dt.timedelta(minutes=1)
    )
    record = records.handover("municipality", to="161", age=20)
    decision = decide(InboundEvent("handover", record), state, POLICY, NOW)
    assert decision.outcome == "held"


def test_parents_consent_stops_counting_at_18() -> None:
    record = records.handover("municipality", to="161", age=18)
    parents = consent("adult_relocation", "youth_unit", given_by="custodial_parent")
    assert _decide("handover", record, parents).outcome == "held"
    own = consent("adult_relocation", "youth_unit", given_by="young_person")
    assert _decide("handover", record, own).outcome == "routed"


def test_child_who_moved_goes_to_family_services_of_the_new_municipality() -> None:
    record = records.handover("municipality", to="165", residence="161", age=16)
    decision = _decide("handover", record)
    assert _routes(decision) == {("family_services", "165", "barnets_lov_132")}


def test_handover_to_a_municipality_off_the_bus_is_denied() -> None:
    decision = _decide("handover", records.handover("municipality", to="101", age=16))
    assert decision.outcome == "denied"
    assert "municipality 101 is not on this bus" in decision.reason


def test_handover_from_uu_goes_to_the_youth_unit() -> None:
    decision = _decide("handover", records.handover("uu", to="161", age=17))
    assert _routes(decision) == {("youth_unit", "161", "kui_15d")}


@pytest.mark.parametrize(("percent", "routed"), [(17.5, True), (15.0, True), (12.0, False)])
def test_school_absence_notifies_family_services_from_15_percent(
    percent: float, routed: bool
) -> None:
    decision = _decide("school_absence_signal", records.school_absence(percent))
    assert (decision.outcome == "routed") is routed
    if routed:
        assert _routes(decision) == {("family_services", "161", "barnets_lov_notification")}


def test_task_ids_are_deterministic_and_differ_per_unit() -> None:
    record = records.release_planning("prison", age=22)
    first = _decide("release_planning", record)
    again = _decide("release_planning", record, now=NOW + dt.timedelta(hours=2))
    assert [r.task_id for r in first.routes] == [r.task_id for r in again.routes]
    assert len({r.task_id for r in first.routes}) == 3
    assert first.routes[0].task_id == task_id(
        record["envelope"]["event_id"], "161", first.routes[0].unit
    )


def test_policy_version_goes_into_every_decision() -> None:
    assert _decide("dropout_notice", records.dropout_notice()).policy_version == POLICY.version
    assert isinstance(POLICY, Policy)


def test_a_policy_padded_to_1000_rules_decides_every_event_as_the_shipped_one() -> None:
    """Decisions look only at the rules whose kind, source and age fit (``Policy.candidates``,
    worked out once per combination): rules that never apply change nothing, in any order."""
    from bench.logic_bench import policy_with_rules
    from bench.router_load import synthetic_events

    shipped = load_policy()
    padded = policy_with_rules(shipped, 1000)
    assert len(padded.rules) == 1000
    for name, record in synthetic_events(300, seed=3):
        event = InboundEvent(name, record)
        for _ in range(2):  # the second time from what the first worked out
            assert decide(event, ConsentState(), padded, NOW) == decide(
                event, ConsentState(), shipped, NOW
            )
    kinds = {rule.event for rule in shipped.rules}
    for kind in kinds:
        for source in ("institution", "prison", "psychiatry", "municipality"):
            for age in (14, 15, 17, 25, 29, 30):
                fit = shipped.candidates(kind, source, age)
                assert list(fit) == [
                    r for r in shipped.rules
                    if r.event == kind and source in r.sources and r.age.covers(age)
                ]  # fmt: skip
