"""The wire codec: round trips of every schema, evolution, golden bytes, details."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas
from schemas.catalogue import catalogue, named_types

# Golden bytes: a dropout notice as the codec wrote it when the contract was made. If this test
# fails, the wire format changed under every consumer: do not update the hex, find the cause.
GOLDEN_V2_HEX = (
    "000000044e4830623666336331652d356432612d346333622d396631302d3761386532643463366230313864"
    "6b2e756e67656275732e64726f706f75745f6e6f746963652e7631808dd9da9567000c393136313031800135"
    "6535653565356535653565356535653565356535653565356535653565356535653565356535653565356535"
    "65356535653565356535653565356535653565dae001063136310000000c39313631303124476c6f73747275"
    "702047796d6e617369756d0006737478aebd0202bec00200021849646120546573746573656e021c73747564"
    "696576656a6c656465720000"
)
# The same notice written by a v1 producer (before institution_contact existed).
GOLDEN_V1_HEX = (
    "000000044d4830623666336331652d356432612d346333622d396631302d3761386532643463366230313864"
    "6b2e756e67656275732e64726f706f75745f6e6f746963652e7631808dd9da9567000c393136313031800135"
    "6535653565356535653565356535653565356535653565356535653565356535653565356535653565356535"
    "65356535653565356535653565356535653565dae001063136310000000c39313631303124476c6f73747275"
    "702047796d6e617369756d0006737478aebd0202bec00200"
)

GOLDEN_V1_RECORD: dict[str, Any] = {
    "envelope": {
        "event_id": "0b6f3c1e-5d2a-4c3b-9f10-7a8e2d4c6b01",
        "event_type": "dk.ungebus.dropout_notice.v1",
        "occurred_at": dt.datetime(2026, 3, 2, 8, 30, tzinfo=dt.UTC),
        "source": {"kind": "institution", "id": "916101"},
        "subject": {
            "pseudonym": "5e" * 32,
            "birth_date": dt.date(2009, 5, 17),
            "residence_kommunekode": "161",
            "cpr": None,
            "name": None,
        },
    },
    "status": "dropped_out",
    "institution_number": "916101",
    "institution_name": "Glostrup Gymnasium",
    "level": "gymnasium",
    "programme": "stx",
    "enrolled_on": dt.date(2025, 8, 11),
    "left_on": dt.date(2026, 2, 27),
    "reason_category": "wrong_choice",
}
GOLDEN_V2_RECORD = {
    **GOLDEN_V1_RECORD,
    "institution_contact": {
        "name": "Ida Testesen",
        "role": "studievejleder",
        "email": None,
        "phone": None,
    },
}


def test_golden_bytes_encode_byte_for_byte() -> None:
    assert schemas.encode("dropout_notice", GOLDEN_V2_RECORD).hex() == GOLDEN_V2_HEX


def test_golden_bytes_decode_back() -> None:
    assert schemas.decode(bytes.fromhex(GOLDEN_V2_HEX)) == ("dropout_notice", 2, GOLDEN_V2_RECORD)


def test_golden_header_is_confluent_wire_format() -> None:
    data = bytes.fromhex(GOLDEN_V2_HEX)
    assert data[0] == 0
    assert int.from_bytes(data[1:5], "big") == 1102 == schemas.schema_id_of(data)


def test_old_writer_bytes_read_into_newest_with_default_filled_in() -> None:
    name, version, record = schemas.decode(bytes.fromhex(GOLDEN_V1_HEX))
    assert (name, version) == ("dropout_notice", 1)
    assert record == {**GOLDEN_V1_RECORD, "institution_contact": None}


def test_old_version_still_encodes_as_it_did() -> None:
    data = schemas.encode_version("dropout_notice", 1, GOLDEN_V1_RECORD)
    assert data.hex() == GOLDEN_V1_HEX


def test_encode_always_writes_the_newest_version() -> None:
    for name in schemas.names():
        assert schemas.newest_version(name) == schemas.schema(name).version
    assert schemas.newest_version("dropout_notice") == 2


def test_encode_rejects_a_record_that_does_not_fit() -> None:
    with pytest.raises(schemas.EncodeError, match="dropout_notice"):
        schemas.encode("dropout_notice", {**GOLDEN_V2_RECORD, "level": "university"})
    with pytest.raises(schemas.EncodeError):
        schemas.encode("dropout_notice", {**GOLDEN_V2_RECORD, "unexpected": 1})
    with pytest.raises(KeyError, match="unknown schema name"):
        schemas.encode("no_such_event", GOLDEN_V2_RECORD)


# --- routing_decision v2: the decision's facts as fields, next to the reason text ---------

DECISION_V1: dict[str, Any] = {
    "event_id": "0b6f3c1e-5d2a-4c3b-9f10-7a8e2d4c6b01",
    "event_type": "dk.ungebus.release_planning.v1",
    "decision": "held",
    "routes": [
        {
            "unit": "jobcentre",
            "kommunekode": "167",
            "basis": {"kind": "statute", "id": "rpl_115", "citation": "Retsplejeloven § 115"},
            "consent_id": None,
            "task_id": "1e081a4c-b81f-529f-9c18-92f55e389dbd",
            "fields": ["expected_release_on"],
        }
    ],
    "reason": "jobcentre@167 on rpl_115 (rule r1); waiting for consent 'release_details' to "
    "social_services@167 until 2026-12-21T09:00:00+00:00 (rule r2)",
    "policy_version": "2026-11-27.1",
    "decided_at": dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC),
    "held_until": dt.datetime(2026, 12, 21, 9, 0, tzinfo=dt.UTC),
    "subject_pseudonym": "5e" * 32,
}
HOLD = {
    "rule_id": "r2",
    "purpose": "release_details",
    "unit": "social_services",
    "kommunekode": "167",
    "until": dt.datetime(2026, 12, 21, 9, 0, tzinfo=dt.UTC),
}
DECISION_V2: dict[str, Any] = {
    **DECISION_V1,
    "routes": [{**DECISION_V1["routes"][0], "rule_id": "r1"}],
    "holds": [HOLD],
    "expired": [],
}


def test_a_v1_decision_reads_as_v2_with_no_rule_ids_and_no_holds() -> None:
    data = schemas.encode_version("routing_decision", 1, DECISION_V1)
    assert schemas.schema_id_of(data) == 3401
    name, version, record = schemas.decode(data)
    assert (name, version) == ("routing_decision", 1)
    assert record == {
        **DECISION_V1,
        "routes": [{**DECISION_V1["routes"][0], "rule_id": None}],
        "holds": [],
        "expired": [],
    }


def test_a_v2_decision_reads_with_the_v1_schema_as_v1_would_have_written_it() -> None:
    data = schemas.encode("routing_decision", DECISION_V2)
    assert schemas.schema_id_of(data) == 3402
    assert schemas.decode(data) == ("routing_decision", 2, DECISION_V2)
    # A consumer that knows only version 1 (an audit store not yet upgraded) reads it whole.
    assert schemas.decode(data, version=1) == ("routing_decision", 2, DECISION_V1)
    old_reader = fastavro.parse_schema(dict(schemas.schema("routing_decision", 1).schema))
    record = fastavro.schemaless_reader(
        io.BytesIO(data[5:]), schemas.parsed_schema("routing_decision", 2), old_reader
    )
    assert record == DECISION_V1
    # The decision's id is the same in both versions (the audit store dedupes across them).
    assert schemas.decision_id_of(DECISION_V1) == schemas.decision_id_of(DECISION_V2)


# --- every schema round-trips any record it admits --------------------------------------

_PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(allow_nan=False),
    "bytes": st.binary(max_size=16),
    "string": st.text(max_size=12),
}
_MOMENTS = st.datetimes(
    min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))


def records_of(node: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Any value the Avro schema ``node`` admits, in the form fastavro decodes to."""
    if isinstance(node, str):
        return _PRIMITIVES[node] if node in _PRIMITIVES else records_of(named[node], named)
    if isinstance(node, list):
        return st.one_of([records_of(branch, named) for branch in node])
    kind, logical = node["type"], node.get("logicalType")
    if logical == "date":
        return st.dates(dt.date(1900, 1, 1), dt.date(2200, 1, 1))
    if logical == "timestamp-millis":
        return _MOMENTS
    if kind == "record":
        return st.fixed_dictionaries(
            {f["name"]: records_of(f["type"], named) for f in node["fields"]}
        )
    if kind == "enum":
        return st.sampled_from(node["symbols"])
    if kind == "array":
        return st.lists(records_of(node["items"], named), max_size=3)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), records_of(node["values"], named), max_size=3)
    return records_of(kind, named)


@pytest.mark.parametrize("sv", catalogue().versions, ids=lambda sv: f"{sv.name}.v{sv.version}")
def test_every_schema_version_round_trips(sv: schemas.SchemaVersion) -> None:
    strategy = records_of(dict(sv.schema), named_types(sv.schema))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(strategy)
    def round_trip(record: dict[str, Any]) -> None:
        data = schemas.encode_version(sv.name, sv.version, record)
        name, version, decoded = schemas.decode(data)
        assert (name, version) == (sv.name, sv.version)
        assert schemas.decode(data, version=sv.version).record == record
        if schemas.schema(sv.name) is sv:
            assert decoded == record
        else:  # read into the newest version, then by the old one: nothing the old one wrote
            # is lost or changed, however deep (new fields may sit in nested records too)
            again = schemas.decode(schemas.encode(sv.name, decoded), version=sv.version)
            assert again.record == record

    round_trip()


# --- what the router builds on ------------------------------------------------------------


def test_field_paths_cover_records_and_their_fields() -> None:
    paths = schemas.field_paths("release_planning")
    assert {"envelope.subject.cpr", "sensitive", "sensitive.health_summary", "needs"} <= paths
    assert "envelope.subject" in paths
    assert "needs.housing" not in paths  # arrays are leaves


def test_every_partner_event_carries_the_envelope() -> None:
    for name in set(schemas.PARTNER_KINDS.values()):
        assert "envelope.subject.pseudonym" in schemas.field_paths(name), name


def test_details_from_json_encodes_only_allowed_paths() -> None:
    details = schemas.details_from(
        "dropout_notice",
        GOLDEN_V2_RECORD,
        ["envelope.subject.birth_date", "envelope.occurred_at", "institution_contact", "left_on"],
    )
    assert details == {
        "envelope.occurred_at": '"2026-03-02T08:30:00.000Z"',
        "envelope.subject.birth_date": '"2009-05-17"',
        "institution_contact": json.dumps(
            GOLDEN_V2_RECORD["institution_contact"], sort_keys=True, ensure_ascii=False
        ),
        "left_on": '"2026-02-27"',
    }
    with pytest.raises(KeyError, match="no field"):
        schemas.details_from("dropout_notice", GOLDEN_V2_RECORD, ["envelope.subject.shoe_size"])


def test_event_types_follow_one_scheme() -> None:
    for name in schemas.names():
        event_type = schemas.event_type_of(name)
        assert event_type == f"dk.ungebus.{name}.v1"
        assert schemas.schema_name_of(event_type) == name
    with pytest.raises(ValueError):
        schemas.schema_name_of("dk.ungebus.unknown.v1")


def test_standard_tooling_reads_the_wire_bytes() -> None:
    """Apache avro (not fastavro) decodes the payload after the 5-byte header."""
    import io

    import avro.io
    import avro.schema

    data = bytes.fromhex(GOLDEN_V2_HEX)
    writer = avro.schema.parse(schemas.schema("dropout_notice", 2).text)
    decoded = avro.io.DatumReader(writer).read(avro.io.BinaryDecoder(io.BytesIO(data[5:])))
    assert decoded["institution_contact"]["name"] == "Ida Testesen"
    assert decoded["envelope"]["subject"]["birth_date"] == dt.date(2009, 5, 17)
