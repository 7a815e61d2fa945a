"""From partner payload to Avro record and CloudEvents headers: the CPR stays where it belongs."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import typing
from typing import Any

import pytest

from schemas import (
    PARTNER_KINDS,
    PARTNER_MODELS,
    cloudevent_headers,
    decode,
    encode,
    parse_partner,
    pseudonym,
    schema,
    to_record,
)
from schemas.catalogue import named_types
from schemas.partners import ActiveMeasureIn
from tests.support.edge_payloads import CPR_16, TODAY, VALID

KEY = b"test-only-pseudonym-key-0123456789"
FRESH_ID = "2f1d0c9b-8a7e-4d6c-9b5a-4e3f2d1c0b9a"


def mapped(kind: str, **kw: Any) -> tuple[str, dict[str, Any]]:
    return to_record(parse_partner(kind, VALID[kind], today=TODAY), KEY, FRESH_ID, **kw)


@pytest.mark.parametrize("kind", sorted(VALID))
def test_every_kind_maps_to_its_schema_and_round_trips(kind: str) -> None:
    name, record = mapped(kind)
    assert name == PARTNER_KINDS[kind]
    assert decode(encode(name, record)) == (name, 2 if name == "dropout_notice" else 1, record)
    assert record["envelope"]["event_type"] == f"dk.ungebus.{name}.v1"


def test_envelope_of_a_dropout_notice() -> None:
    _, record = mapped("dropout_notice")
    assert record["envelope"] == {
        "event_id": FRESH_ID,
        "event_type": "dk.ungebus.dropout_notice.v1",
        "occurred_at": dt.datetime(2026, 3, 2, 8, 30, tzinfo=dt.UTC),
        "source": {"kind": "institution", "id": "916101"},
        "subject": {
            "pseudonym": pseudonym(CPR_16, KEY),
            "birth_date": dt.date(2009, 5, 17),
            "residence_kommunekode": "161",
            "cpr": "1705094917",
            "name": "Alma Testesen",
        },
    }


def test_partner_event_id_wins_so_retries_deduplicate() -> None:
    _, record = mapped("consent_granted")
    assert record["envelope"]["event_id"] == VALID["consent_granted"]["event_id"]


def test_an_event_id_is_required_from_somewhere() -> None:
    with pytest.raises(ValueError, match="event_id"):
        to_record(parse_partner("dropout_notice", VALID["dropout_notice"], today=TODAY), KEY)


def test_release_planning_settings_and_sensitive_part() -> None:
    _, prison = mapped("release_planning_prison")
    _, ward = mapped("release_planning_psychiatry")
    assert (prison["setting"], ward["setting"]) == ("prison", "psychiatric_ward")
    assert prison["envelope"]["source"] == {"kind": "prison", "id": "kf-vest-01"}
    assert ward["expected_release_on"] == dt.date(2026, 3, 20)
    assert prison["sensitive"]["criminal_record_summary"] == "Syntetisk."
    assert prison["sensitive"]["health_summary"] is None
    assert ward["sensitive"]["health_summary"] == "Syntetisk."


def test_handover_sources() -> None:
    _, uu = mapped("handover_uu")
    _, moved = mapped("handover_municipality")
    assert uu["envelope"]["source"] == {"kind": "uu_centre", "id": "uu-vestegnen"}
    assert (uu["origin"], uu["to_kommunekode"], uu["from_kommunekode"]) == ("uu", "161", None)
    assert moved["envelope"]["source"] == {"kind": "municipality", "id": "101"}
    assert (moved["from_kommunekode"], moved["to_kommunekode"]) == ("101", "161")


def test_keep_cpr_false_leaves_only_the_pseudonym() -> None:
    _, record = mapped("dropout_notice", keep_cpr=False)
    assert record["envelope"]["subject"]["cpr"] is None
    assert "1705094917" not in encode("dropout_notice", record).hex()


def test_pseudonym_is_hmac_sha256_of_the_ten_digits() -> None:
    expected = hmac.new(KEY, b"1705094917", hashlib.sha256).hexdigest()
    assert pseudonym("170509-4917", KEY) == pseudonym("1705094917", KEY) == expected
    assert pseudonym(CPR_16, b"another key") != expected
    with pytest.raises(ValueError, match="key"):
        pseudonym(CPR_16, b"")


def test_cloudevent_headers_mirror_the_envelope_and_never_carry_the_cpr() -> None:
    _, record = mapped("dropout_notice")
    headers = cloudevent_headers(record)
    assert dict(headers) == {
        "ce_specversion": b"1.0",
        "ce_id": FRESH_ID.encode(),
        "ce_type": b"dk.ungebus.dropout_notice.v1",
        "ce_source": b"/ungebus/source/institution/916101",
        "ce_time": b"2026-03-02T08:30:00.000Z",
        "ce_subject": pseudonym(CPR_16, KEY).encode(),
        "content-type": b"application/avro",
    }
    blob = b"".join(k.encode() + v for k, v in headers)
    assert b"1705094917" not in blob and b"170509" not in blob


def test_sub_millisecond_times_are_truncated_like_the_wire_does() -> None:
    payload = copy.deepcopy(VALID["dropout_notice"])
    payload["occurred_at"] = "2026-03-02T09:30:00.123456+01:00"
    _, record = to_record(parse_partner("dropout_notice", payload, today=TODAY), KEY, FRESH_ID)
    assert record["envelope"]["occurred_at"].microsecond == 123000
    assert decode(encode("dropout_notice", record)).record == record


def _symbols(name: str, path: str) -> set[str]:
    """Enum symbols of the Avro field at ``path`` (through arrays and nullable unions)."""
    sv = schema(name)
    named = named_types(sv.schema)
    node: Any = sv.schema
    for part in path.split("."):
        node = next(f for f in node["fields"] if f["name"] == part)["type"]
        while True:
            node = named.get(node, node) if isinstance(node, str) else node
            if isinstance(node, list):
                node = next(b for b in node if b != "null")
            elif node.get("type") == "array":
                node = node["items"]
            else:
                break
    return set(node["symbols"])


@pytest.mark.parametrize(
    ("kind", "field", "name", "path"),
    [
        ("dropout_notice", "status", "dropout_notice", "status"),
        ("dropout_notice", "level", "dropout_notice", "level"),
        ("dropout_notice", "reason_category", "dropout_notice", "reason_category"),
        ("release_planning_prison", "needs", "release_planning", "needs"),
        ("handover_uu", "reason", "handover", "reason"),
        ("handover_municipality", "reason", "handover", "reason"),
        ("consent_granted", "recipient_unit", "consent_granted", "recipient_unit"),
        ("consent_granted", "given_by", "consent_granted", "given_by"),
        ("consent_withdrawn", "withdrawn_by", "consent_withdrawn", "withdrawn_by"),
    ],
)
def test_edge_choices_are_avro_symbols(kind: str, field: str, name: str, path: str) -> None:
    annotation = PARTNER_MODELS[kind].model_fields[field].annotation
    literal = typing.get_args(annotation)[0] if field == "needs" else annotation
    assert set(typing.get_args(literal)) <= _symbols(name, path)


def test_measure_kinds_are_avro_symbols() -> None:
    kinds = set(typing.get_args(ActiveMeasureIn.model_fields["kind"].annotation))
    assert kinds == _symbols("handover", "active_measures.kind")
