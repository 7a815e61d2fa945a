"""From a validated partner payload to the Avro record and its CloudEvents Kafka headers.

This is the boundary where the CPR number becomes a pseudonym: it stays only in
``envelope.subject.cpr`` (and there only if ``keep_cpr``), never in headers or keys.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from schemas.cpr import birth_date, pseudonym
from schemas.domain import event_type_of
from schemas.edge import Contact, PartnerEvent
from schemas.partners import (
    ConsentGrantedIn,
    ConsentWithdrawnIn,
    DropoutNoticeIn,
    HandoverMunicipalityIn,
    HandoverUuIn,
    ReleasePlanningPrisonIn,
    ReleasePlanningPsychiatryIn,
    SchoolAbsenceSignalIn,
)

Record = dict[str, Any]


def to_millis(moment: dt.datetime) -> dt.datetime:
    """UTC, truncated to milliseconds: exactly what timestamp-millis gives back."""
    utc = moment.astimezone(dt.UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def _contact(contact: Contact | None) -> Record | None:
    return None if contact is None else contact.model_dump()


def _dropout(e: DropoutNoticeIn) -> tuple[Record, tuple[str, str]]:
    body = {
        "status": e.status,
        "institution_number": e.institution_number,
        "institution_name": e.institution_name,
        "level": e.level,
        "programme": e.programme,
        "enrolled_on": e.enrolled_on,
        "left_on": e.left_on,
        "reason_category": e.reason_category,
        "institution_contact": _contact(e.institution_contact),
    }
    return body, ("institution", e.institution_number)


def _sensitive(fields: Mapping[str, Any] | None) -> Record | None:
    if fields is None:
        return None
    empty = {"criminal_record_summary": None, "health_summary": None, "substance_use": None}
    return {**empty, "notes": None, **fields}


def _release_prison(e: ReleasePlanningPrisonIn) -> tuple[Record, tuple[str, str]]:
    body = {
        "setting": "prison",
        "facility_id": e.prison_id,
        "facility_name": e.prison_name,
        "planning_started_on": e.planning_started_on,
        "expected_release_on": e.expected_release_on,
        "parole_decision_on": e.parole_decision_on,
        "needs": list(e.needs),
        "coordinator": _contact(e.coordinator),
        "sensitive": _sensitive(e.sensitive.model_dump() if e.sensitive else None),
    }
    return body, ("prison", e.prison_id)


def _release_psychiatry(e: ReleasePlanningPsychiatryIn) -> tuple[Record, tuple[str, str]]:
    body = {
        "setting": "psychiatric_ward",
        "facility_id": e.ward_id,
        "facility_name": e.ward_name,
        "planning_started_on": e.planning_started_on,
        "expected_release_on": e.expected_discharge_on,
        "parole_decision_on": None,
        "needs": list(e.needs),
        "coordinator": _contact(e.coordinator),
        "sensitive": _sensitive(e.sensitive.model_dump() if e.sensitive else None),
    }
    return body, ("psychiatric_ward", e.ward_id)


def _handover(e: HandoverUuIn | HandoverMunicipalityIn) -> Record:
    return {
        "reason": e.reason,
        "active_measures": [m.model_dump() for m in e.active_measures],
        "hand_over_by": e.hand_over_by,
        "case_reference": e.case_reference,
        "sender_contact": _contact(e.sender_contact),
    }


def _handover_uu(e: HandoverUuIn) -> tuple[Record, tuple[str, str]]:
    body = {
        "origin": "uu",
        "from_kommunekode": None,
        "from_uu_centre_id": e.uu_centre_id,
        "to_kommunekode": e.subject.residence_kommunekode,
        **_handover(e),
    }
    return body, ("uu_centre", e.uu_centre_id)


def _handover_municipality(e: HandoverMunicipalityIn) -> tuple[Record, tuple[str, str]]:
    body = {
        "origin": "municipality",
        "from_kommunekode": e.from_kommunekode,
        "from_uu_centre_id": None,
        "to_kommunekode": e.to_kommunekode,
        **_handover(e),
    }
    return body, ("municipality", e.from_kommunekode)


def _absence(e: SchoolAbsenceSignalIn) -> tuple[Record, tuple[str, str]]:
    body = e.model_dump(
        include={
            "institution_number", "school_name", "grade", "period_start", "period_end",
            "unlawful_absence_percent", "threshold_crossed_percent",
        }
    )  # fmt: skip
    body["unlawful_absence_percent"] = float(body["unlawful_absence_percent"])
    return body, ("school", e.institution_number)


def _consent_granted(e: ConsentGrantedIn) -> tuple[Record, tuple[str, str]]:
    body = e.model_dump(
        include={
            "consent_id", "purpose", "recipient_unit", "recipient_kommunekode", "given_by",
            "valid_until", "evidence_reference",
        }
    )  # fmt: skip
    return body, ("municipality", e.recipient_kommunekode)


def _consent_withdrawn(e: ConsentWithdrawnIn) -> tuple[Record, tuple[str, str]]:
    body = e.model_dump(
        include={
            "consent_id", "purpose", "recipient_unit", "recipient_kommunekode", "withdrawn_by",
            "evidence_reference",
        }
    )  # fmt: skip
    return body, ("municipality", e.recipient_kommunekode)


_BODIES: Mapping[type[PartnerEvent], Callable[[Any], tuple[Record, tuple[str, str]]]] = {
    DropoutNoticeIn: _dropout,
    ReleasePlanningPrisonIn: _release_prison,
    ReleasePlanningPsychiatryIn: _release_psychiatry,
    HandoverUuIn: _handover_uu,
    HandoverMunicipalityIn: _handover_municipality,
    SchoolAbsenceSignalIn: _absence,
    ConsentGrantedIn: _consent_granted,
    ConsentWithdrawnIn: _consent_withdrawn,
}


def to_record(
    event: PartnerEvent,
    pseudonym_key: bytes,
    event_id: str | None = None,
    *,
    keep_cpr: bool = True,
) -> tuple[str, Record]:
    """(schema name, Avro record) for a validated partner payload.

    The partner's own ``event_id`` wins, so its retries deduplicate; ``event_id`` is the
    connector's fresh id for a payload that came without one.
    """
    resolved = str(event.event_id) if event.event_id is not None else event_id
    if not resolved:
        raise ValueError("the payload has no event_id and none was given")
    body, (source_kind, source_id) = _BODIES[type(event)](event)
    subject = event.subject
    envelope = {
        "event_id": resolved,
        "event_type": str(event_type_of(event.schema_name)),
        "occurred_at": to_millis(event.occurred_at),
        "source": {"kind": source_kind, "id": source_id},
        "subject": {
            "pseudonym": pseudonym(subject.cpr, pseudonym_key),
            "birth_date": birth_date(subject.cpr),
            "residence_kommunekode": subject.residence_kommunekode,
            "cpr": subject.cpr if keep_cpr else None,
            "name": subject.name,
        },
    }
    return event.schema_name, {"envelope": envelope, **body}


def source_uri(kind: str, source_id: str) -> str:
    """CloudEvents ``source`` of a partner: /ungebus/source/<kind>/<id>."""
    return f"/ungebus/source/{quote(kind, safe='')}/{quote(source_id, safe='')}"


def cloudevent_headers(record: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    """CloudEvents binary-mode Kafka headers mirroring a record's envelope; never the CPR."""
    envelope = record["envelope"]
    return build_headers(
        ce_id=envelope["event_id"],
        ce_type=envelope["event_type"],
        ce_source=source_uri(envelope["source"]["kind"], envelope["source"]["id"]),
        ce_time=envelope["occurred_at"],
        ce_subject=envelope["subject"]["pseudonym"],
    )


def build_headers(
    *, ce_id: str, ce_type: str, ce_source: str, ce_time: dt.datetime, ce_subject: str
) -> list[tuple[str, bytes]]:
    """CloudEvents 1.0 Kafka binary-mode headers, for envelope and bus events alike."""
    cacheable = type(ce_time) is dt.datetime and ce_time.tzinfo is dt.UTC
    time = _utc_time_header(ce_time) if cacheable else _time_header(ce_time)
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", ce_id.encode()),
        ("ce_type", ce_type.encode()),
        ("ce_source", ce_source.encode()),
        ("ce_time", time),
        ("ce_subject", ce_subject.encode()),
        ("content-type", b"application/avro"),
    ]


def _time_header(moment: dt.datetime) -> bytes:
    """ISO 8601 in UTC to the millisecond, with Z."""
    return to_millis(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z").encode()


# The router writes a task and an audit record with the same time: format it once. Only plain
# UTC datetimes are cached: equal ones are then the same instant, written the same way.
_utc_time_header = lru_cache(maxsize=64)(_time_header)
