"""Ways to break a valid synthetic payload on exactly one field, the way partners get it wrong.

Each mutation returns (field, code, reason): the dotted field the rejection must name, the
error code our validators give, and the intended reason in words for the manifest.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

from schemas.cpr import birth_date, passes_modulus_11

Payload = dict[str, Any]
Mutation = Callable[[random.Random, Payload], tuple[str, str, str]]


def _occurred(payload: Payload) -> dt.date:
    return dt.datetime.fromisoformat(payload["occurred_at"]).date()


def _failing_modulus_11(cpr: str) -> str:
    """Keep the synthetic promise (see schemas.synthetic) after changing digits."""
    while passes_modulus_11(cpr):
        cpr = cpr[:-1] + str((int(cpr[-1]) + 1) % 10)
    return cpr


def _cpr_no_date(rng: random.Random, p: Payload) -> tuple[str, str, str]:
    cpr = p["subject"]["cpr"]
    p["subject"]["cpr"] = f"3102{cpr[4:]}"  # 31 February never happened
    return "subject.cpr", "cpr_birth_date", "CPR number without a real birth date (31 February)"


def _cpr_format(rng: random.Random, p: Payload) -> tuple[str, str, str]:
    p["subject"]["cpr"] = p["subject"]["cpr"].replace("-", "")[:9]
    return "subject.cpr", "cpr_format", "CPR number with 9 digits"


def _too_old(rng: random.Random, p: Payload) -> tuple[str, str, str]:
    cpr = p["subject"]["cpr"]
    born = birth_date(cpr)
    yy = (born.year - 20) % 100  # 20 years older: 35-49 on the event date, digit 7 of 1900s
    p["subject"]["cpr"] = _failing_modulus_11(f"{cpr[:4]}{yy:02d}-{rng.randint(0, 3)}{cpr[8:]}")
    return "subject.cpr", "age_out_of_range", "the young person is over 29 on the event date"


def _unknown_kommune(rng: random.Random, p: Payload) -> tuple[str, str, str]:
    p["subject"]["residence_kommunekode"] = rng.choice(("999", "000", "161x"))
    return "subject.residence_kommunekode", "unknown_kommunekode", "unknown kommunekode"


def _extra_field(rng: random.Random, p: Payload) -> tuple[str, str, str]:
    p["favourite_colour"] = "blå"
    return "favourite_colour", "extra_forbidden", "a field the contract does not have"


def _no_time_zone(rng: random.Random, p: Payload) -> tuple[str, str, str]:
    p["occurred_at"] = p["occurred_at"][:19]
    return "occurred_at", "timezone_aware", "occurred_at without a time zone"


def _missing_occurred(rng: random.Random, p: Payload) -> tuple[str, str, str]:
    del p["occurred_at"]
    return "occurred_at", "missing", "occurred_at left out"


def _bad_event_id(rng: random.Random, p: Payload) -> tuple[str, str, str]:
    p["event_id"] = "not-a-uuid"
    return "event_id", "uuid_parsing", "event_id that is not a UUID"


def _set(field: str, value: Any, code: str, reason: str) -> Mutation:
    def mutate(rng: random.Random, p: Payload) -> tuple[str, str, str]:
        p[field] = value
        return field, code, reason

    return mutate


def _before(field: str, other: str, days: int = 1) -> Mutation:
    """Put ``field`` a day before ``other`` (a field, or 'occurred_at')."""

    def mutate(rng: random.Random, p: Payload) -> tuple[str, str, str]:
        anchor = _occurred(p) if other == "occurred_at" else dt.date.fromisoformat(p[other])
        p[field] = (anchor - dt.timedelta(days=days)).isoformat()
        return field, "date_order", f"{field} before {other}"

    return mutate


def _left_before_enrolled(rng: random.Random, p: Payload) -> tuple[str, str, str]:
    p["status"] = "dropped_out"
    return _before("left_on", "enrolled_on")(rng, p)


def _same_municipality(rng: random.Random, p: Payload) -> tuple[str, str, str]:
    p["from_kommunekode"] = p["to_kommunekode"]
    return "from_kommunekode", "same_municipality", "handover from and to the same municipality"


def _parent_for_adult(rng: random.Random, p: Payload) -> tuple[str, str, str]:
    occurred = _occurred(p)
    born = birth_date(p["subject"]["cpr"])
    if (occurred - born).days < 18 * 366:  # make the young person 20-ish, keep the serial
        older = born.replace(year=born.year - 5, day=min(born.day, 28))
        cpr = p["subject"]["cpr"]
        digit7 = 4 if older.year >= 2000 else 0
        p["subject"]["cpr"] = _failing_modulus_11(f"{older:%d%m%y}-{digit7}{cpr[8:]}")
    p["given_by"] = "custodial_parent"
    return "given_by", "consent_giver", "a custodial parent consenting for an adult"


def _absence_below_threshold(rng: random.Random, p: Payload) -> tuple[str, str, str]:
    p["unlawful_absence_percent"] = 12.5
    p["threshold_crossed_percent"] = 15
    return "threshold_crossed_percent", "threshold_not_crossed", "threshold above the absence"


def _health_data_from_prison(rng: random.Random, p: Payload) -> tuple[str, str, str]:
    p["sensitive"] = {"health_summary": "Syntetisk testtekst."}
    return "sensitive.health_summary", "extra_forbidden", "health data in a prison's payload"


COMMON: tuple[Mutation, ...] = (
    _cpr_no_date, _cpr_format, _too_old, _unknown_kommune, _extra_field, _no_time_zone,
    _missing_occurred, _bad_event_id,
)  # fmt: skip

BY_KIND: dict[str, tuple[Mutation, ...]] = {
    "dropout_notice": (
        _set("institution_number", "91610", "institution_number", "5-digit institution number"),
        _left_before_enrolled,
        _set("level", "university", "literal_error", "a level that is not gymnasium/eud/fgu"),
    ),
    "release_planning_prison": (
        _before("expected_release_on", "planning_started_on"),
        _set("needs", ["housing", "housing"], "duplicate", "a need listed twice"),
        _health_data_from_prison,
    ),
    "release_planning_psychiatry": (
        _before("expected_discharge_on", "planning_started_on"),
        _set("ward_id", "afsnit U1", "identifier", "a ward id with a space"),
    ),
    "handover_uu": (
        _before("hand_over_by", "occurred_at"),
        _set("reason", "relocation", "literal_error", "relocation is a municipality handover"),
    ),
    "handover_municipality": (
        _same_municipality,
        _set("from_kommunekode", "12", "unknown_kommunekode", "2-digit kommunekode"),
    ),
    "school_absence_signal": (
        _set("unlawful_absence_percent", 120.0, "less_than_equal", "absence over 100 %"),
        _before("period_end", "period_start"),
        _absence_below_threshold,
    ),
    "consent_granted": (_parent_for_adult, _before("valid_until", "occurred_at")),
    "consent_withdrawn": (
        _set("purpose", "Dropout Details", "purpose", "a purpose that is not a policy name"),
        _set("recipient_unit", "police", "literal_error", "a unit the bus does not have"),
    ),
}


def make_invalid(rng: random.Random, kind: str, payload: Payload) -> tuple[str, str, str]:
    """Break ``payload`` in place on one field; (field, code, reason)."""
    return rng.choice(COMMON + BY_KIND[kind])(rng, payload)
