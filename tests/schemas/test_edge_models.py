"""Partner edge models: what they accept, and that every rejection names the field in words.

CPR numbers here are synthetic (serial 9xx, failing modulus-11; see schemas.synthetic).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import PARTNER_MODELS, field_errors, parse_partner
from schemas.cpr import CprError, birth_date, birth_year, digits, passes_modulus_11
from tests.support.edge_payloads import CPR_24, TODAY, VALID, subject


def rejection(kind: str, payload: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(ValidationError) as caught:
        parse_partner(kind, payload, today=TODAY)
    return field_errors(caught.value)


def test_every_partner_kind_has_a_valid_example() -> None:
    assert set(VALID) == set(PARTNER_MODELS)


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_payloads_pass_as_dict_str_and_bytes(kind: str) -> None:
    payload = VALID[kind]
    for form in (payload, json.dumps(payload), json.dumps(payload).encode()):
        model = parse_partner(kind, form, today=TODAY)
        assert model.subject.cpr == digits(payload["subject"]["cpr"])


DROP = object()  # as a value: remove the field


def edited(kind: str, path: str, value: Any) -> dict[str, Any]:
    """A deep copy of the valid example with one dotted path set (or dropped)."""
    payload = copy.deepcopy(VALID[kind])
    *parents, last = path.split(".")
    node = payload
    for part in parents:
        node = node[part]
    if value is DROP:
        del node[last]
    else:
        node[last] = value
    return payload


Case = tuple[str, str, Any, str, str]


def case(kind: str, path: str, value: Any, words: str, field: str | None = None) -> Case:
    """(kind, path, value, words the reason must contain, field the rejection must name)."""
    return kind, path, value, words, field or path


DN, PRISON, WARD = "dropout_notice", "release_planning_prison", "release_planning_psychiatry"
UU, MOVED, ABSENCE = "handover_uu", "handover_municipality", "school_absence_signal"
GRANTED, WITHDRAWN = "consent_granted", "consent_withdrawn"
RESIDENCE = "subject.residence_kommunekode"

MATRIX: list[Case] = [
    case(DN, "subject.cpr", "310209-4917", "real birth date"),
    case(DN, "subject.cpr", "17050949", "DDMMYY-SSSS"),
    case(DN, "subject.cpr", "170509 4917", "DDMMYY-SSSS"),
    case(DN, "subject.cpr", "020396-0911", "15-29 years old"),
    case(DN, "subject.cpr", "030311-5907", "15-29 years old"),
    case(DN, "subject.cpr", DROP, "required"),
    case(DN, RESIDENCE, "101", "unknown kommunekode"),
    case(DN, RESIDENCE, 161, "string"),
    case(DN, "institution_number", "91610", "6-digit"),
    case(DN, "left_on", "2025-08-10", "before enrolled_on"),
    case(DN, "left_on", DROP, "required when status is dropped_out"),
    case(DN, "status", "at_risk", "empty when status is at_risk", "left_on"),
    case(DN, "level", "university", "'gymnasium', 'eud' or 'fgu'"),
    case(DN, "enrolled_on", "1999-12-31", "before 2000"),
    case(DN, "enrolled_on", "2026-03-03", "after occurred_at"),
    case(DN, "left_on", "2028-03-03", "2 years"),
    case(DN, "occurred_at", "2026-03-02T09:30:00", "time zone"),
    case(DN, "occurred_at", "2026-04-02T09:30:00Z", "future"),
    case(DN, "event_id", "not-a-uuid", "UUID"),
    case(DN, "favourite_colour", "blå", "not a field"),
    case(DN, "institution_contact.fax", "1", "not a field"),
    case(PRISON, "expected_release_on", "2026-02-19", "before planning_started_on"),
    case(PRISON, "parole_decision_on", "2026-05-16", "after expected_release_on"),
    case(PRISON, "needs", ["housing", "housing"], "twice"),
    case(PRISON, "needs", ["yacht"], "one of", "needs.0"),
    case(PRISON, "sensitive.health_summary", "x", "not a field"),
    case(PRISON, "prison_id", "", "1-64"),
    case(WARD, "sensitive.criminal_record_summary", "x", "not a field"),
    case(WARD, "planning_started_on", "2026-03-05", "after occurred_at"),
    case(UU, "hand_over_by", "2026-03-01", "before occurred_at"),
    case(UU, "reason", "relocation", "one of"),
    case(UU, "active_measures", [{"kind": "yacht"}], "one of", "active_measures.0.kind"),
    case(MOVED, "from_kommunekode", "161", "differ from to_kommunekode"),
    case(MOVED, "from_kommunekode", "999", "not a Danish kommunekode"),
    case(MOVED, "to_kommunekode", "101", "unknown kommunekode"),
    case(ABSENCE, "unlawful_absence_percent", 120, "less than or equal to 100"),
    case(ABSENCE, "unlawful_absence_percent", "17", "number"),
    case(ABSENCE, "unlawful_absence_percent", 12.5, "not crossed", "threshold_crossed_percent"),
    case(ABSENCE, "threshold_crossed_percent", 12, "10 or 15"),
    case(ABSENCE, "period_end", "2025-11-30", "before period_start"),
    case(ABSENCE, "grade", 11, "less than or equal to 10"),
    case(GRANTED, "subject.cpr", CPR_24, "under 18", "given_by"),
    case(GRANTED, "valid_until", "2026-03-01", "before occurred_at"),
    case(GRANTED, "purpose", "Dropout Details", "routing policy"),
    case(GRANTED, "recipient_unit", "police", "one of"),
    case(GRANTED, "recipient_kommunekode", "999", "unknown kommunekode"),
    case(WITHDRAWN, "withdrawn_by", DROP, "required"),
]


@pytest.mark.parametrize(
    ("kind", "path", "value", "words", "field"),
    MATRIX,
    ids=[f"{kind}:{path}:{words}" for kind, path, _, words, _ in MATRIX],
)
def test_each_invalid_case_names_its_field(
    kind: str, path: str, value: Any, words: str, field: str
) -> None:
    errors = rejection(kind, edited(kind, path, value))
    assert [e["field"] for e in errors] == [field], errors
    assert words.lower() in errors[0]["reason"].lower(), errors


def test_errors_never_echo_the_cpr_number() -> None:
    payload = copy.deepcopy(VALID["dropout_notice"])
    payload["subject"]["cpr"] = "020396-0911"  # too old: valid number, rejected
    with pytest.raises(ValidationError) as caught:
        parse_partner("dropout_notice", payload, today=TODAY)
    text = str(caught.value) + json.dumps(field_errors(caught.value))
    assert "0203960911" not in text and "020396" not in text


def test_model_repr_hides_the_cpr_number() -> None:
    model = parse_partner("dropout_notice", VALID["dropout_notice"], today=TODAY)
    assert "170509" not in repr(model)


def test_several_problems_are_all_reported() -> None:
    payload = copy.deepcopy(VALID["dropout_notice"])
    payload["institution_number"] = "12"
    payload["level"] = "university"
    payload["subject"]["residence_kommunekode"] = "999"
    fields = {e["field"] for e in rejection("dropout_notice", payload)}
    assert fields == {"institution_number", "level", "subject.residence_kommunekode"}


def test_non_json_and_non_object_payloads() -> None:
    assert rejection("dropout_notice", "{not json")[0]["field"] == "(payload)"  # type: ignore[arg-type]
    errors = rejection("dropout_notice", "[]")  # type: ignore[arg-type]
    assert errors == [
        {"field": "(payload)", "reason": "must be a JSON object", "code": "model_type"}
    ]


def test_unknown_partner_kind() -> None:
    with pytest.raises(KeyError, match="known:"):
        parse_partner("tax_return", {})


def test_age_boundaries_are_inclusive() -> None:
    for cpr in ("020311-5907", "030396-0911"):  # exactly 15, and 29 one day before turning 30
        payload = {**VALID["dropout_notice"], "subject": subject(cpr)}
        parse_partner("dropout_notice", payload, today=TODAY)


@pytest.mark.parametrize(
    ("cpr", "born"),
    [
        ("010100-0911", dt.date(1900, 1, 1)),
        ("010199-3911", dt.date(1999, 1, 1)),
        ("010136-4911", dt.date(2036, 1, 1)),
        ("010137-4911", dt.date(1937, 1, 1)),
        ("010136-9911", dt.date(2036, 1, 1)),
        ("010137-9911", dt.date(1937, 1, 1)),
        ("010157-5911", dt.date(2057, 1, 1)),
        ("010158-5911", dt.date(1858, 1, 1)),
        ("010110-8911", dt.date(2010, 1, 1)),
        ("010190-8911", dt.date(1890, 1, 1)),
        ("2902084911", dt.date(2008, 2, 29)),
    ],
)
def test_century_rule_from_digit_7(cpr: str, born: dt.date) -> None:
    assert birth_date(cpr) == born


def test_29_february_only_in_leap_years() -> None:
    with pytest.raises(CprError, match="real birth date"):
        birth_date("290209-4911")


def test_modulus_11_is_never_a_reason_to_reject() -> None:
    failing = [c for c in ("170509-4917", "170509-4918") if not passes_modulus_11(c)]
    assert failing
    for cpr in failing:
        parse_partner(
            "dropout_notice", {**VALID["dropout_notice"], "subject": subject(cpr)}, today=TODAY
        )


def test_birth_year_table() -> None:
    assert [birth_year(36, d) for d in range(10)] == [1936] * 4 + [2036] * 5 + [2036]
    assert [birth_year(58, d) for d in range(10)] == [1958] * 4 + [1958] + [1858] * 4 + [1958]
