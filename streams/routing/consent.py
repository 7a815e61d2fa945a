"""Consent state of one young person: a fold over consent granted / withdrawn events.

The router keeps one :class:`ConsentState` per subject pseudonym in a changelog-backed table,
so it reads consent from the partition it already holds. Everything here is pure.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from schemas.cpr import age_on

ADULT_AGE = 18


@dataclass(frozen=True)
class Consent:
    """One consent: for a purpose, to one unit in one municipality, until a date."""

    consent_id: str
    purpose: str
    unit: str
    kommunekode: str
    given_by: str  # young_person | custodial_parent
    granted_at: dt.datetime
    valid_until: dt.date
    withdrawn_at: dt.datetime | None = None

    def covers(self, purpose: str, unit: str, kommunekode: str) -> bool:
        return self.purpose == purpose and self.unit == unit and self.kommunekode == kommunekode

    def active_at(self, now: dt.datetime, birth_date: dt.date) -> bool:
        """Granted, not withdrawn, not expired, and not a parent's consent for an adult."""
        if self.withdrawn_at is not None and self.withdrawn_at <= now:
            return False
        if self.granted_at > now or now.date() > self.valid_until:
            return False
        # Turning 18 re-opens consent given by parents: it no longer counts.
        return not (
            self.given_by == "custodial_parent" and age_on(birth_date, now.date()) >= ADULT_AGE
        )


@dataclass(frozen=True)
class ConsentState:
    """Every consent known for one young person, newest decisions applied."""

    consents: tuple[Consent, ...] = ()

    def granted(self, consent: Consent) -> ConsentState:
        """Add or replace the consent with this id (a repeated grant changes nothing)."""
        others = tuple(c for c in self.consents if c.consent_id != consent.consent_id)
        return ConsentState((*others, consent))

    def withdrawn(
        self, consent_id: str, purpose: str, unit: str, kommunekode: str, at: dt.datetime
    ) -> ConsentState:
        """Withdraw this consent, and any earlier one for the same purpose and recipient."""

        def withdraw(c: Consent) -> Consent:
            hit = c.consent_id == consent_id or (
                c.covers(purpose, unit, kommunekode) and c.granted_at <= at
            )
            if hit and (c.withdrawn_at is None or c.withdrawn_at > at):
                return replace(c, withdrawn_at=at)
            return c

        return ConsentState(tuple(withdraw(c) for c in self.consents))

    def active(
        self, purpose: str, unit: str, kommunekode: str, now: dt.datetime, birth_date: dt.date
    ) -> Consent | None:
        """The consent that covers this purpose and recipient now, if any (newest first)."""
        if not self.consents:  # most young people have given none
            return None
        candidates = [
            c
            for c in self.consents
            if c.covers(purpose, unit, kommunekode) and c.active_at(now, birth_date)
        ]
        return max(candidates, key=lambda c: c.granted_at, default=None)

    # -- the table's wire form (JSON) --------------------------------------------------------
    def to_json(self) -> bytes:
        return json.dumps([_consent_to_dict(c) for c in self.consents], sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | None) -> ConsentState:
        if not data:
            return cls()
        return cls(tuple(_consent_from_dict(d) for d in json.loads(data)))


def apply_consent_event(
    state: ConsentState, name: str, record: Mapping[str, Any], now: dt.datetime
) -> ConsentState:
    """Fold one decoded consent_granted / consent_withdrawn record into the state, ``now``.

    A withdrawal counts from when it happened, and at the latest from now: a sender's clock
    ahead of ours must not leave the consent active for what is decided after it.
    """
    envelope = record["envelope"]
    occurred_at = envelope["occurred_at"]
    if name == "consent_granted":
        return state.granted(
            Consent(
                consent_id=record["consent_id"],
                purpose=record["purpose"],
                unit=record["recipient_unit"],
                kommunekode=record["recipient_kommunekode"],
                given_by=record["given_by"],
                granted_at=occurred_at,
                valid_until=record["valid_until"],
            )
        )
    if name == "consent_withdrawn":
        return state.withdrawn(
            record["consent_id"],
            record["purpose"],
            record["recipient_unit"],
            record["recipient_kommunekode"],
            min(occurred_at, now),
        )
    raise ValueError(f"{name} is not a consent event")


def _consent_to_dict(consent: Consent) -> dict[str, Any]:
    raw = asdict(consent)
    raw["granted_at"] = consent.granted_at.isoformat()
    raw["valid_until"] = consent.valid_until.isoformat()
    raw["withdrawn_at"] = consent.withdrawn_at.isoformat() if consent.withdrawn_at else None
    return raw


def _consent_from_dict(raw: Mapping[str, Any]) -> Consent:
    withdrawn = raw.get("withdrawn_at")
    return Consent(
        consent_id=raw["consent_id"],
        purpose=raw["purpose"],
        unit=raw["unit"],
        kommunekode=raw["kommunekode"],
        given_by=raw["given_by"],
        granted_at=dt.datetime.fromisoformat(raw["granted_at"]),
        valid_until=dt.date.fromisoformat(raw["valid_until"]),
        withdrawn_at=dt.datetime.fromisoformat(withdrawn) if withdrawn else None,
    )
