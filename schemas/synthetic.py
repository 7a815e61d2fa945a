"""Deterministic synthetic partner payloads: same seed, byte-identical output; never real people.

Synthetic identities:

- CPR numbers have real birth dates (ages fit each kind, always 15-29 on the event date) and
  the right century digit, but serial digits 8-10 are always 900-999 and the whole number
  always FAILS the modulus-11 check. Until 2007 the CPR office issued only numbers that pass
  it, so no person born before 2007 can have one of these; for later births a clash is
  possible but meaningless: no data about any real person is attached. Failing modulus-11 also
  proves the validators never reject for it.
- Institution numbers are ``9`` + kommunekode + 2 digits (the 9xxxxx band); institution,
  prison, ward and UU centre names are invented.

Dates count back from a reference date (passed in, not today), so output never drifts.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.cpr import age_on, birth_date, passes_modulus_11
from schemas.domain import KOMMUNEKODER, PARTNER_KINDS
from schemas.synthetic_invalid import make_invalid

DEFAULT_REFERENCE_DATE = dt.date(2026, 6, 1)
KINDS = tuple(PARTNER_KINDS)
CET = dt.timezone(dt.timedelta(hours=1))

AGES = {
    "dropout_notice": (16, 24),
    "release_planning_prison": (18, 29),
    "release_planning_psychiatry": (17, 29),
    "handover_uu": (15, 24),
    "handover_municipality": (15, 29),
    "school_absence_signal": (15, 16),
    "consent_granted": (15, 29),
    "consent_withdrawn": (15, 29),
}
FIRST_NAMES = (
    "Emil",
    "Freja",
    "Noah",
    "Ida",
    "Oscar",
    "Alma",
    "Lucas",
    "Clara",
    "Malik",
    "Sofie",
    "William",
    "Aya",
    "Elias",
    "Laura",
    "Yusuf",
    "Nora",
    "Magnus",
    "Ella",
)
LAST_NAMES = (
    "Testesen",
    "Prøvesen",
    "Eksempelsen",
    "Fiktivsen",
    "Syntesen",
    "Demonstrup",
    "Modelgaard",
    "Skitsholm",
    "Udkastrup",
)
PROGRAMMES = {
    "gymnasium": ("stx", "hhx", "htx", "hf"),
    "eud": ("Smed", "Frisør", "Elektriker", "Tømrer", "Kontor"),
    "fgu": ("FGU Almen", "FGU Produktion", "FGU Erhverv"),
}
PRISONS = (
    ("kf-vest-01", "Statsfængslet ved Vestvolden"),
    ("kf-arr-07", "Arresthuset Vestegn"),
    ("kf-pen-03", "Pension Egelund (udslusning)"),
)
WARDS = (
    ("rh-pcv-u1", "Psykiatrisk Center Vestegnen, afsnit U1"),
    ("rh-pcv-u3", "Psykiatrisk Center Vestegnen, ungeafsnit U3"),
)
UU_CENTRES = (("uu-vestegnen", "UU Vestegnen"), ("uu-egnen-nord", "UU Egnen Nord"))
OTHER_KOMMUNER = ("101", "147", "157", "173", "185", "253", "259", "265")
DROPOUT_REASONS = ("wrong_choice", "academic", "absence", "personal", "health", "moved", "other")
UU_REASONS = ("left_compulsory_school", "not_in_education_or_job", "dropped_out", "end_of_guidance")
# (purpose, recipient unit) pairs, as named in the routing policy (streams/policy.toml).
PURPOSES = (
    ("dropout_details", "youth_unit"),
    ("release_details", "jobcentre"),
    ("release_details", "social_services"),
    ("discharge_health_details", "social_services"),
    ("discharge_mentor", "jobcentre"),
    ("adult_relocation", "youth_unit"),
)
NEEDS = (
    "housing",
    "education",
    "job",
    "mentor",
    "income",
    "addiction_treatment",
    "mental_health_treatment",
    "social_network",
)


@dataclass(frozen=True)
class InvalidCase:
    """A payload made invalid on purpose, and the one field its rejection must name."""

    kind: str
    line: int
    field: str
    code: str
    reason: str


@dataclass(frozen=True)
class Batch:
    seed: int
    count: int
    invalid_share: float
    reference_date: dt.date
    payloads: dict[str, list[dict[str, Any]]] = field(repr=False)
    invalid: list[InvalidCase]


def synthetic_cpr(rng: random.Random, born: dt.date) -> str:
    """A CPR-shaped number for ``born``: right century digit, serial 900-999, fails modulus-11."""
    yy = born.year % 100
    if born.year >= 2000:
        digit7s = [d for d in (4, 9) if yy <= 36] + [d for d in (5, 6, 7, 8) if yy <= 57]
    else:
        digit7s = [0, 1, 2, 3] + ([4, 9] if yy > 36 else [])
    while True:
        number = f"{born:%d%m}{yy:02d}-{rng.choice(digit7s)}{rng.randint(900, 999)}"
        if not passes_modulus_11(number):
            return number


def birth_date_for_age(rng: random.Random, on: dt.date, age: int) -> dt.date:
    """A birth date that makes someone exactly ``age`` on ``on``."""
    try:
        anniversary = on.replace(year=on.year - age)
    except ValueError:  # 29 February
        anniversary = on.replace(year=on.year - age, day=28)
    return anniversary - dt.timedelta(days=rng.randint(0, 364))


def _day(rng: random.Random, start: dt.date, lo: int, hi: int) -> dt.date:
    return start + dt.timedelta(days=rng.randint(lo, hi))


def _occurred_at(rng: random.Random, reference: dt.date) -> dt.datetime:
    day = _day(rng, reference, -60, -1)
    time = dt.time(rng.randint(7, 16), rng.randint(0, 59), rng.randint(0, 59), tzinfo=CET)
    return dt.datetime.combine(day, time)


def _institution(code: str, slot: int) -> tuple[str, str]:
    """Synthetic number 9 + kommunekode + slot, and an invented name for the slot."""
    town = KOMMUNEKODER[code]
    names = {
        1: f"{town} Gymnasium",
        2: f"{town} Tekniske Skole",
        3: f"FGU Vestegnen, {town}",
        10: f"{town} Vestskole",
        11: f"{town} Nordskole",
        12: f"{town} 10. klasse-center",
    }
    return f"9{code}{slot:02d}", names[slot]


def _contact(rng: random.Random, role: str) -> dict[str, Any]:
    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    email = f"{name.split()[0].lower()}@example.invalid"
    return {
        "name": name,
        "role": role,
        "email": email,
        "phone": f"+45 99 {rng.randint(10, 99)} 00 00",
    }


def _subject(rng: random.Random, kind: str, occurred: dt.datetime, code: str) -> dict[str, Any]:
    lo, hi = AGES[kind]
    born = birth_date_for_age(rng, occurred.date(), rng.randint(lo, hi))
    subject: dict[str, Any] = {"cpr": synthetic_cpr(rng, born), "residence_kommunekode": code}
    if rng.random() < 0.7:
        subject["name"] = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    return subject


@dataclass(frozen=True)
class _Draw:
    """What every kind's body is drawn from: the generator, the event date, the municipality."""

    rng: random.Random
    day: dt.date
    code: str
    age: int

    def date(self, lo: int, hi: int, start: dt.date | None = None) -> str:
        return _day(self.rng, start or self.day, lo, hi).isoformat()


def _dropout_notice(d: _Draw) -> dict[str, Any]:
    level = d.rng.choice(tuple(PROGRAMMES))
    number, name = _institution(d.code, {"gymnasium": 1, "eud": 2, "fgu": 3}[level])
    status = d.rng.choice(("dropped_out", "at_risk"))
    body: dict[str, Any] = {
        "institution_number": number,
        "institution_name": name,
        "status": status,
        "level": level,
        "programme": d.rng.choice(PROGRAMMES[level]),
        "enrolled_on": d.date(-700, -30),
    }
    if status == "dropped_out":
        body["left_on"] = d.date(-20, 0)
    body["reason_category"] = d.rng.choice(DROPOUT_REASONS)
    if d.rng.random() < 0.5:
        body["institution_contact"] = _contact(d.rng, "studievejleder")
    return body


def _release_planning(d: _Draw, prison: bool) -> dict[str, Any]:
    facility_id, facility_name = d.rng.choice(PRISONS if prison else WARDS)
    started = _day(d.rng, d.day, -30, 0)
    expected = _day(d.rng, started, 14, 120)
    key = "prison" if prison else "ward"
    body: dict[str, Any] = {
        f"{key}_id": facility_id,
        f"{key}_name": facility_name,
        "planning_started_on": started.isoformat(),
        f"expected_{'release' if prison else 'discharge'}_on": expected.isoformat(),
        "needs": d.rng.sample(NEEDS, d.rng.randint(1, 4)),
    }
    if prison and d.rng.random() < 0.5:
        body["parole_decision_on"] = (expected - dt.timedelta(days=28)).isoformat()
    role = "løsladelseskoordinator" if prison else "udskrivningskoordinator"
    body["coordinator"] = _contact(d.rng, role)
    if d.rng.random() < 0.5:
        summary = "criminal_record_summary" if prison else "health_summary"
        body["sensitive"] = {summary: "Syntetisk testtekst.", "substance_use": d.rng.random() < 0.3}
    return body


def _handover(d: _Draw, uu: bool) -> dict[str, Any]:
    body: dict[str, Any]
    if uu:
        centre_id, centre_name = d.rng.choice(UU_CENTRES)
        reason = d.rng.choice(UU_REASONS)
        body = {"uu_centre_id": centre_id, "uu_centre_name": centre_name, "reason": reason}
    else:
        others = [c for c in (*KOMMUNEKODER, *OTHER_KOMMUNER) if c != d.code]
        body = {"from_kommunekode": d.rng.choice(others), "to_kommunekode": d.code}
        body["reason"] = "relocation"
    body["active_measures"] = [
        {
            "kind": d.rng.choice(("mentor", "contact_person", "youth_plan", "education_plan")),
            "description": "Ugentlige samtaler.",
            "ends_on": d.date(30, 300),
        }
        for _ in range(d.rng.randint(0, 2))
    ]
    body["hand_over_by"] = d.date(5, 30)
    body["case_reference"] = f"SAG-{d.rng.randint(100000, 999999)}"
    return body


def _school_absence_signal(d: _Draw) -> dict[str, Any]:
    number, name = _institution(d.code, 10 + d.rng.randint(0, 2))
    end = _day(d.rng, d.day, -10, 0)
    percent = round(d.rng.uniform(10.0, 35.0), 1)
    return {
        "institution_number": number,
        "school_name": name,
        "grade": d.rng.choice((9, 10)),
        "period_start": (end - dt.timedelta(days=90)).isoformat(),
        "period_end": end.isoformat(),
        "unlawful_absence_percent": percent,
        "threshold_crossed_percent": 15 if percent >= 15 else 10,
    }


def _consent(d: _Draw, granted: bool) -> dict[str, Any]:
    purpose, unit = d.rng.choice(PURPOSES)
    body: dict[str, Any] = {
        "consent_id": f"consent-{uuid.UUID(int=d.rng.getrandbits(128), version=4)}",
        "purpose": purpose,
        "recipient_unit": unit,
        "recipient_kommunekode": d.code,
    }
    giver = "custodial_parent" if d.age < 18 and d.rng.random() < 0.5 else "young_person"
    if not granted:
        return {**body, "withdrawn_by": giver}
    body["given_by"] = giver
    body["valid_until"] = d.date(90, 365)
    body["evidence_reference"] = f"DOK-{d.rng.randint(100000, 999999)}"
    return body


BODIES: dict[str, Callable[[_Draw], dict[str, Any]]] = {
    "dropout_notice": _dropout_notice,
    "release_planning_prison": lambda d: _release_planning(d, prison=True),
    "release_planning_psychiatry": lambda d: _release_planning(d, prison=False),
    "handover_uu": lambda d: _handover(d, uu=True),
    "handover_municipality": lambda d: _handover(d, uu=False),
    "school_absence_signal": _school_absence_signal,
    "consent_granted": lambda d: _consent(d, granted=True),
    "consent_withdrawn": lambda d: _consent(d, granted=False),
}


def valid_payload(rng: random.Random, kind: str, reference: dt.date) -> dict[str, Any]:
    """One valid partner payload of ``kind`` (JSON-ready: dates as ISO strings)."""
    occurred = _occurred_at(rng, reference)
    code = rng.choice(tuple(KOMMUNEKODER))
    subject = _subject(rng, kind, occurred, code)
    age = age_on(birth_date(subject["cpr"]), occurred.date())
    payload: dict[str, Any] = {}
    if rng.random() < 0.8:
        payload["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    payload["occurred_at"] = occurred.isoformat()
    payload["subject"] = subject
    payload.update(BODIES[kind](_Draw(rng, occurred.date(), code, age)))
    return payload


def generate_payloads(
    *,
    seed: int,
    count: int,
    invalid_share: float = 0.1,
    reference_date: dt.date = DEFAULT_REFERENCE_DATE,
    kinds: Iterable[str] = KINDS,
) -> Batch:
    """``count`` payloads round-robin over ``kinds``; ``invalid_share`` of them invalid."""
    kinds = tuple(kinds)
    rng = random.Random(seed)
    invalid_at = set(rng.sample(range(count), round(count * invalid_share)))
    payloads: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    invalid: list[InvalidCase] = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        payload = valid_payload(rng, kind, reference_date)
        if i in invalid_at:
            field_path, code, reason = make_invalid(rng, kind, payload)
            invalid.append(InvalidCase(kind, len(payloads[kind]) + 1, field_path, code, reason))
        payloads[kind].append(payload)
    return Batch(seed, count, invalid_share, reference_date, payloads, invalid)


def write_payloads(batch: Batch, out: Path) -> dict[str, Any]:
    """One ``<kind>.jsonl`` per partner kind plus ``manifest.json``; returns the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for kind, payloads in batch.payloads.items():
        lines = "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in payloads)
        (out / f"{kind}.jsonl").write_text(lines, encoding="utf-8")
        files[kind] = {"file": f"{kind}.jsonl", "lines": len(payloads)}
    manifest = {
        "generator": "schemas.synthetic",
        "note": "Synthetic test data, never real people: see the schemas.synthetic docstring.",
        "seed": batch.seed,
        "count": batch.count,
        "invalid_share": batch.invalid_share,
        "reference_date": batch.reference_date.isoformat(),
        "files": files,
        "invalid": [
            {
                "kind": c.kind,
                "file": f"{c.kind}.jsonl",
                "line": c.line,
                "field": c.field,
                "code": c.code,
                "reason": c.reason,
            }
            for c in batch.invalid
        ],
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest
