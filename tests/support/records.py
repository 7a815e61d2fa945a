"""Decoded partner records (as the router sees them after Avro decoding), for pure tests."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from bus.demo_partners import demo_registry
from streams.routing.consent import Consent
from streams.routing.senders import Senders

OCCURRED = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)  # a Monday


def envelope(
    name: str,
    *,
    age: int = 16,
    residence: str = "161",
    source_kind: str = "institution",
    source_id: str = "916101",  # a demo partner's (bus.demo_partners): the router checks it
    occurred_at: dt.datetime = OCCURRED,
    event_id: str | None = None,
    pseudonym: str = "a1" * 32,
) -> dict[str, Any]:
    birth = dt.date(occurred_at.year - age, 3, 14)
    if (birth.month, birth.day) > (occurred_at.month, occurred_at.day):
        raise ValueError("pick a birth date before the event's day of year")
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": f"dk.ungebus.{name}.v1",
        "occurred_at": occurred_at,
        "source": {"kind": source_kind, "id": source_id},
        "subject": {
            "pseudonym": pseudonym,
            "birth_date": birth,
            "residence_kommunekode": residence,
            "cpr": "1403101234",
            "name": "Test Testesen",
        },
    }


def dropout_notice(**kw: Any) -> dict[str, Any]:
    return {
        "envelope": envelope("dropout_notice", **kw),
        "status": "dropped_out",
        "institution_number": "916101",
        "institution_name": "Vestegnens Gymnasium",
        "level": "gymnasium",
        "programme": "stx",
        "enrolled_on": dt.date(2025, 8, 11),
        "left_on": dt.date(2026, 10, 30),
        "reason_category": "health",
        "institution_contact": {
            "name": "Studievejleder",
            "role": None,
            "email": None,
            "phone": None,
        },
    }


def release_planning(setting: str = "prison", **kw: Any) -> dict[str, Any]:
    kw.setdefault("source_kind", setting)
    kw.setdefault("source_id", "kf-vest-01" if setting == "prison" else "rh-pcv-u1")
    kw.setdefault("age", 22)
    return {
        "envelope": envelope("release_planning", **kw),
        "setting": setting,
        "facility_id": kw["source_id"],
        "facility_name": "Fængslet",
        "planning_started_on": dt.date(2026, 10, 1),
        "expected_release_on": dt.date(2027, 1, 15),
        "parole_decision_on": None,
        "needs": ["housing", "job"],
        "coordinator": None,
        "sensitive": {
            "criminal_record_summary": "synthetic",
            "health_summary": None,
            "substance_use": None,
            "notes": None,
        },
    }


def handover(origin: str = "municipality", to: str = "161", **kw: Any) -> dict[str, Any]:
    kw.setdefault("source_kind", "municipality" if origin == "municipality" else "uu_centre")
    kw.setdefault("source_id", "153" if origin == "municipality" else "uu-vestegnen")
    return {
        "envelope": envelope("handover", **kw),
        "origin": origin,
        "from_kommunekode": "153" if origin == "municipality" else None,
        "from_uu_centre_id": None if origin == "municipality" else "uu-vestegnen",
        "to_kommunekode": to,
        "reason": "relocation",
        "active_measures": [],
        "hand_over_by": dt.date(2026, 11, 20),
        "case_reference": None,
        "sender_contact": None,
    }


def school_absence(percent: float = 17.5, **kw: Any) -> dict[str, Any]:
    kw.setdefault("source_kind", "school")
    kw.setdefault("source_id", "916110")
    kw.setdefault("age", 15)
    return {
        "envelope": envelope("school_absence_signal", **kw),
        "institution_number": "916110",
        "school_name": "Skole",
        "grade": 9,
        "period_start": dt.date(2026, 8, 1),
        "period_end": dt.date(2026, 10, 31),
        "unlawful_absence_percent": percent,
        "threshold_crossed_percent": 15 if percent >= 15 else 10,
    }


def consent(
    purpose: str,
    unit: str,
    kommunekode: str = "161",
    *,
    consent_id: str = "c-1",
    given_by: str = "young_person",
    granted_at: dt.datetime = OCCURRED,
    valid_until: dt.date = dt.date(2027, 12, 31),
) -> Consent:
    return Consent(consent_id, purpose, unit, kommunekode, given_by, granted_at, valid_until)


def senders() -> Senders:
    """The demo partners (whose sources the records above claim), as the router checks them."""
    return Senders.from_registry(demo_registry())
