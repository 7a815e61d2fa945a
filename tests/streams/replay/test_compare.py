"""The preview's pure parts: two decisions compared, and consents folded from history."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import schemas
from streams.replay.compare import compare
from streams.replay.events import Tally, events_to_decide, fold_consents
from streams.routing.consent import ConsentState
from streams.routing.decide import InboundEvent, decide
from streams.routing.outputs import InMessage
from streams.routing.policy import load_policy
from tests.streams.replay.policies import PolicyText
from tests.support import records
from tests.support.records import OCCURRED

POLICY = load_policy()
NOW = OCCURRED + dt.timedelta(minutes=5)
PERSON = "b2" * 32


def _message(name: str, record: dict[str, Any], offset: int = 0) -> InMessage:
    pseudonym = record["envelope"]["subject"]["pseudonym"]
    value = schemas.encode(name, record)
    return InMessage("t.inbound.events", 0, offset, pseudonym.encode(), value, [])


def _consent_record(name: str, **fields: Any) -> dict[str, Any]:
    envelope = records.envelope(
        name, age=20, source_kind="municipality", source_id="161", pseudonym=PERSON,
        occurred_at=OCCURRED - dt.timedelta(days=1),
    )  # fmt: skip
    grant = {"consent_id": "c-1", "purpose": "adult_relocation", "recipient_unit": "youth_unit",
             "recipient_kommunekode": "161", "evidence_reference": "doc-1"}  # fmt: skip
    return {"envelope": envelope, **grant, **fields}


def test_a_removed_rule_and_an_added_field_are_the_only_changes(tmp_path: Any) -> None:
    candidate = (
        PolicyText()
        .with_field("dropout.late_starter", "reason_category")
        .without_rule("prison.youth_unit")
        .write(tmp_path / "c.toml")
    )
    dropout = InboundEvent("dropout_notice", records.dropout_notice(age=16))
    prison = InboundEvent("release_planning", records.release_planning("prison", age=22))
    absence = InboundEvent("school_absence_signal", records.school_absence(18.0))

    def changes(event: InboundEvent) -> list[tuple[str, str, str, str]]:
        before = decide(event, ConsentState(), POLICY, NOW)
        after = decide(event, ConsentState(), candidate, NOW)
        return [(c.kind, c.unit, c.rule_id, c.detail) for c in compare(event, before, after)]

    assert changes(dropout) == [
        ("field_added", "youth_unit", "dropout.late_starter", "reason_category")
    ]
    assert changes(prison) == [("route_removed", "youth_unit", "prison.youth_unit", "")]
    assert changes(absence) == []


def test_a_route_that_needs_a_consent_no_one_gave_is_a_hold_not_a_route(tmp_path: Any) -> None:
    event = InboundEvent("handover", records.handover("municipality", to="161", age=20))
    before = decide(event, ConsentState(), POLICY, NOW)
    without_rule = PolicyText().without_rule("handover.adult_moved").write(tmp_path / "p.toml")
    after = decide(event, ConsentState(), without_rule, NOW)
    assert [(c.kind, c.unit, c.detail) for c in compare(event, before, after)] == [
        ("hold_removed", "youth_unit", "adult_relocation")
    ]


def test_consents_are_folded_from_all_history_and_a_later_withdrawal_counts() -> None:
    granted = _consent_record("consent_granted", given_by="young_person",
                              valid_until=dt.date(2027, 12, 31))  # fmt: skip
    withdrawn = _consent_record("consent_withdrawn", withdrawn_by="young_person")
    withdrawn["envelope"]["occurred_at"] = OCCURRED + dt.timedelta(days=1)
    handover = records.handover("municipality", to="161", age=20, pseudonym=PERSON)
    history = [_message("consent_granted", granted, 0), _message("handover", handover, 1)]
    tally = Tally()

    given = fold_consents(history, records.senders(), NOW, tally)
    (item,) = events_to_decide(history, records.senders(), given, tally)
    assert decide(item.event, item.consents, POLICY, NOW).outcome == "routed"

    # The withdrawal came after the event: decided today, the event may no longer go.
    later = NOW + dt.timedelta(days=2)
    taken_back = fold_consents(
        [*history, _message("consent_withdrawn", withdrawn, 2)], records.senders(), later, tally
    )
    assert decide(item.event, taken_back[PERSON], POLICY, later).outcome == "held"


def test_records_the_router_would_not_route_are_left_out_by_reason() -> None:
    good = records.dropout_notice(age=16)
    wrong_key = dataclasses.replace(_message("dropout_notice", good), key=b"someone else")
    stranger = records.dropout_notice(age=16, source_id="999999")
    history = [
        _message("dropout_notice", good, 0),
        _message("dropout_notice", good, 1),
        wrong_key,
        _message("dropout_notice", stranger, 3),
        dataclasses.replace(_message("dropout_notice", good), value=b"\x00garbage"),
    ]
    tally = Tally()
    decided = list(events_to_decide(history, records.senders(), {}, tally))
    assert [d.event.event_id for d in decided] == [good["envelope"]["event_id"]]
    assert tally.left_out == {
        "the same event id again": 1,
        "the key is not the subject's pseudonym": 1,
        "a sender no partner may speak for": 1,
        "undecodable (unknown_schema_id)": 1,
    }
