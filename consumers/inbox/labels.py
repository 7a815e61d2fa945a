"""Words for caseworkers: labels for dotted field paths, readable values, event kinds.

Pure functions over a task's ``details`` (path -> JSON text), which holds only what the routing
policy allowed this unit to see; what is not there is never looked up elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from schemas import KOMMUNEKODER

NAME = "envelope.subject.name"
CPR = "envelope.subject.cpr"
SOURCE = "envelope.source"

FIELD_LABELS: Mapping[str, str] = {
    "envelope.event_id": "Event id",
    "envelope.event_type": "Event type",
    "envelope.occurred_at": "Occurred at",
    SOURCE: "Sent by",
    "envelope.source.kind": "Sender kind",
    "envelope.source.id": "Sender id",
    NAME: "Name",
    CPR: "CPR number",
    "envelope.subject.birth_date": "Birth date",
    "envelope.subject.residence_kommunekode": "Municipality of residence",
    "envelope.subject.pseudonym": "Pseudonym",
    "status": "Status",
    "institution_number": "Institution number",
    "institution_name": "Institution",
    "institution_contact": "Contact at the institution",
    "level": "Level",
    "programme": "Programme",
    "enrolled_on": "Enrolled on",
    "left_on": "Left on",
    "reason_category": "Reason for leaving",
    "setting": "Setting",
    "facility_id": "Facility id",
    "facility_name": "Facility",
    "planning_started_on": "Planning started on",
    "expected_release_on": "Expected release or discharge",
    "parole_decision_on": "Parole decision on",
    "needs": "Needs",
    "coordinator": "Coordinator",
    "sensitive": "Sensitive details (by consent)",
    "origin": "Handed over by",
    "from_kommunekode": "From municipality",
    "from_uu_centre_id": "From UU centre",
    "to_kommunekode": "To municipality",
    "reason": "Reason",
    "active_measures": "Active measures",
    "hand_over_by": "Hand over by",
    "case_reference": "Case reference",
    "sender_contact": "Contact at the sender",
    "school_name": "School",
    "grade": "Grade",
    "period_start": "Period start",
    "period_end": "Period end",
    "unlawful_absence_percent": "Unlawful absence (%)",
    "threshold_crossed_percent": "Threshold crossed (%)",
}

UNIT_LABELS: Mapping[str, str] = {
    "youth_unit": "Youth unit",
    "jobcentre": "Jobcentre",
    "family_services": "Family services",
    "social_services": "Social services",
    "ssp": "SSP/KSP",
}

SOURCE_KINDS: Mapping[str, str] = {
    "institution": "Institution",
    "prison": "Prison",
    "psychiatric_ward": "Psychiatric ward",
    "municipality": "Municipality",
    "uu_centre": "UU centre",
    "school": "School",
}

# Fields that name the sender, in order of preference, when envelope.source is not allowed.
_SENDER_NAMES = ("institution_name", "facility_name", "school_name")


def label(path: str) -> str:
    """'envelope.subject.cpr' -> 'CPR number'; unknown paths are spelled out from their end."""
    if path in FIELD_LABELS:
        return FIELD_LABELS[path]
    words = path.rsplit(".", 1)[-1].replace("_", " ")
    return words[:1].upper() + words[1:]


def municipality(kommunekode: str) -> str:
    name = KOMMUNEKODER.get(kommunekode)
    return f"{name} ({kommunekode})" if name else kommunekode


def unit_label(unit: str) -> str:
    return UNIT_LABELS.get(unit, unit)


def event_kind(event_type: str) -> str:
    """'dk.ungebus.dropout_notice.v1' -> 'Dropout notice'."""
    parts = event_type.split(".")
    name = parts[-2] if len(parts) >= 3 and parts[-1].startswith("v") else event_type
    words = name.replace("_", " ")
    return words[:1].upper() + words[1:]


def parse(json_text: str) -> Any:
    """The value behind a details entry; the raw text if it is not JSON."""
    try:
        return json.loads(json_text)
    except ValueError:
        return json_text


def readable(path: str, value: Any) -> str:
    """A details value as a caseworker reads it."""
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if path.endswith("kommunekode") and isinstance(value, str):
        return municipality(value)
    if path == SOURCE and isinstance(value, dict):
        kind = SOURCE_KINDS.get(str(value.get("kind")), str(value.get("kind")))
        return f"{kind} {value.get('id', '')}".strip()
    if isinstance(value, list):
        return "; ".join(readable(path, item) for item in value)
    if isinstance(value, dict):
        shown = [f"{label(k)}: {readable(k, v)}" for k, v in value.items() if v not in (None, "")]
        return ", ".join(shown) or "—"
    return str(value)


def detail(details: Mapping[str, str], path: str) -> str | None:
    """One allowed field, readable; None when the policy did not allow it to this unit."""
    if path not in details:
        return None
    return readable(path, parse(details[path]))


def sender(details: Mapping[str, str]) -> str | None:
    """Who sent the event, as far as the unit may see it."""
    source = detail(details, SOURCE)
    names = [n for n in (detail(details, p) for p in _SENDER_NAMES) if n and n != "—"]
    if source and names:
        return f"{names[0]} ({source})"
    return source or (names[0] if names else None)


# Who, then who sent it and when; the rest of the envelope, then the event's own fields.
_FIRST = (NAME, CPR, "envelope.subject.birth_date", SOURCE, "envelope.occurred_at")


def fields(details: Mapping[str, str]) -> list[tuple[str, str]]:
    """(label, value) of every allowed field, in a stable order."""
    ordered = sorted(
        details,
        key=lambda p: (
            _FIRST.index(p) if p in _FIRST else len(_FIRST),
            not p.startswith("envelope."),
            p,
        ),
    )
    return [(label(p), readable(p, parse(details[p]))) for p in ordered]
