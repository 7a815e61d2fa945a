"""A valid payload of every partner kind, for the edge model and mapping tests; no tests here.

CPR numbers here are synthetic (serial 9xx, failing modulus-11; see schemas.synthetic).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

TODAY = dt.date(2026, 3, 10)
OCCURRED = "2026-03-02T09:30:00+01:00"
CPR_16 = "170509-4917"  # born 2009-05-17, 16 on the event date
CPR_24 = "051101-4903"  # born 2001-11-05, 24


def subject(cpr: str = CPR_16) -> dict[str, Any]:
    return {"cpr": cpr, "residence_kommunekode": "161", "name": "Alma Testesen"}


def contact() -> dict[str, Any]:
    return {"name": "Ida Prøvesen", "role": "studievejleder", "email": "ida@example.invalid"}


VALID: dict[str, dict[str, Any]] = {
    "dropout_notice": {
        "occurred_at": OCCURRED,
        "subject": subject(),
        "institution_number": "916101",
        "institution_name": "Glostrup Gymnasium",
        "status": "dropped_out",
        "level": "gymnasium",
        "programme": "stx",
        "enrolled_on": "2025-08-11",
        "left_on": "2026-02-27",
        "reason_category": "wrong_choice",
        "institution_contact": contact(),
    },
    "release_planning_prison": {
        "occurred_at": OCCURRED,
        "subject": subject(CPR_24),
        "prison_id": "kf-vest-01",
        "prison_name": "Statsfængslet ved Vestvolden",
        "planning_started_on": "2026-02-20",
        "expected_release_on": "2026-05-15",
        "parole_decision_on": "2026-04-17",
        "needs": ["housing", "job"],
        "sensitive": {"criminal_record_summary": "Syntetisk.", "substance_use": False},
    },
    "release_planning_psychiatry": {
        "occurred_at": OCCURRED,
        "subject": subject(CPR_24),
        "ward_id": "rh-pcv-u3",
        "ward_name": "Psykiatrisk Center Vestegnen, U3",
        "planning_started_on": "2026-02-28",
        "expected_discharge_on": "2026-03-20",
        "needs": ["mentor", "housing"],
        "sensitive": {"health_summary": "Syntetisk."},
    },
    "handover_uu": {
        "occurred_at": OCCURRED,
        "subject": subject(),
        "uu_centre_id": "uu-vestegnen",
        "uu_centre_name": "UU Vestegnen",
        "reason": "not_in_education_or_job",
        "active_measures": [{"kind": "mentor", "ends_on": "2026-08-31"}],
        "hand_over_by": "2026-03-16",
    },
    "handover_municipality": {
        "occurred_at": OCCURRED,
        "subject": subject(),
        "from_kommunekode": "101",
        "to_kommunekode": "161",
        "hand_over_by": "2026-03-16",
        "active_measures": [{"kind": "contact_person", "description": "Fast kontaktperson"}],
    },
    "school_absence_signal": {
        "occurred_at": OCCURRED,
        "subject": subject(),
        "institution_number": "916110",
        "school_name": "Glostrup Vestskole",
        "grade": 10,
        "period_start": "2025-12-01",
        "period_end": "2026-02-28",
        "unlawful_absence_percent": 17,
        "threshold_crossed_percent": 15,
    },
    "consent_granted": {
        "event_id": "6c0f3a8e-1d52-4b7e-9a31-3f4e5d6c7b8a",
        "occurred_at": OCCURRED,
        "subject": subject(),
        "consent_id": "consent-1",
        "purpose": "dropout_details",
        "recipient_unit": "youth_unit",
        "recipient_kommunekode": "161",
        "given_by": "custodial_parent",
        "valid_until": "2026-12-31",
        "evidence_reference": "DOK-123456",
    },
    "consent_withdrawn": {
        "occurred_at": OCCURRED,
        "subject": subject(),
        "consent_id": "consent-1",
        "purpose": "dropout_details",
        "recipient_unit": "youth_unit",
        "recipient_kommunekode": "161",
        "withdrawn_by": "young_person",
    },
}
