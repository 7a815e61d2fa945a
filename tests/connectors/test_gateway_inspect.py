"""The Kafka gateway's check of one record from a partner's own topic (no Kafka)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import schemas
from bus.demo_partners import demo_registry
from connectors.gateway import Forward, Refused, inspect
from tests.support import records

PARTNERS = demo_registry().by_name
SCHOOLS = PARTNERS["demo-ungdomsuddannelser"]
MUNICIPALITIES = PARTNERS["demo-kommuner"]
LIMIT = 64 * 1024


def _wire(name: str, record: dict[str, Any]) -> tuple[bytes, bytes]:
    return record["envelope"]["subject"]["pseudonym"].encode(), schemas.encode(name, record)


def _dropout(**kw: Any) -> dict[str, Any]:
    return records.dropout_notice(pseudonym=uuid.uuid4().hex * 2, **kw)


def test_a_record_the_partner_may_send_is_forwarded() -> None:
    key, value = _wire("dropout_notice", _dropout())
    outcome = inspect(SCHOOLS, key, value, LIMIT)
    assert isinstance(outcome, Forward)
    assert (outcome.name, outcome.source_kind) == ("dropout_notice", "institution")


def test_a_consent_from_a_municipality_is_forwarded() -> None:
    envelope = records.envelope(
        "consent_withdrawn", age=20, source_kind="municipality", source_id="165"
    )
    record = {
        "envelope": envelope, "consent_id": "c-1", "purpose": "adult_relocation",
        "recipient_unit": "youth_unit", "recipient_kommunekode": "165",
        "withdrawn_by": "young_person", "evidence_reference": None,
    }  # fmt: skip
    assert isinstance(inspect(MUNICIPALITIES, *_wire("consent_withdrawn", record), LIMIT), Forward)


@pytest.mark.parametrize(
    ("partner", "record", "error_type", "words"),
    [
        (SCHOOLS, _dropout(source_id="000000"), "SourceNotAllowed", "institution:000000 is not"),
        (MUNICIPALITIES, _dropout(), "KindNotAllowed", "may not send dropout_notice"),
        (
            SCHOOLS,
            _dropout(source_kind="school", source_id="916110"),
            "SourceNotAllowed",
            "school:916110 is not a source",
        ),
    ],
)
def test_a_kind_or_source_the_partner_may_not_claim_is_refused(
    partner: Any, record: dict[str, Any], error_type: str, words: str
) -> None:
    outcome = inspect(partner, *_wire("dropout_notice", record), LIMIT)
    assert isinstance(outcome, Refused)
    assert outcome.error_type == error_type and words in outcome.reason
    assert outcome.event_id == record["envelope"]["event_id"]


@pytest.mark.parametrize(
    ("key", "value", "error_type"),
    [
        (b"k", None, "Tombstone"),
        (b"k", b"\x00" * (LIMIT + 1), "TooLarge"),
        (b"k", b"\x01not the wire format", "DecodeError"),
        (b"k", b"\x00\x00\x00\x7f\xffgarbage", "DecodeError"),
        (b"not-the-pseudonym", _wire("dropout_notice", _dropout())[1], "WrongKey"),
    ],
)
def test_broken_records_are_refused_with_a_reason(
    key: bytes, value: bytes | None, error_type: str
) -> None:
    outcome = inspect(SCHOOLS, key, value, LIMIT)
    assert isinstance(outcome, Refused) and outcome.error_type == error_type


def test_a_bus_record_is_no_partner_event() -> None:
    record = {
        "task_id": "t", "event_id": "e", "unit": "youth_unit", "kommunekode": "161",
        "subject_pseudonym": "a1" * 32, "taken_over_by": "x",
        "taken_over_at": records.OCCURRED, "note": None,
        "sealed_note": None,
    }  # fmt: skip
    outcome = inspect(SCHOOLS, b"k", schemas.encode("task_taken_over", record), LIMIT)
    assert isinstance(outcome, Refused) and outcome.error_type == "WrongKind"
