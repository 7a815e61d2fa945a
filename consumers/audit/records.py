"""The wire boundary: an ``audit.routing`` record in, an :class:`AuditedDecision` out.

Reading never raises: a record the store cannot use becomes ``Rejected`` with a reason for the
dead-letter topic. Reasons never quote the record's content (no personal data in logs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import schemas
from bus.erasure.fact import erasure_from
from consumers.audit.decisions import AuditedDecision, AuditedErasure

RECORD = "routing_decision"
_PSEUDONYM = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Rejected:
    error_type: str  # machine-readable, e.g. decode:unknown_schema_id
    reason: str
    event_id: str | None = None


def read(
    value: bytes | None, offset: int | None = None
) -> AuditedDecision | AuditedErasure | Rejected:
    """The decision (or, from ``erasures``, the erasure) in ``value`` (read at ``offset``), or
    why it is neither."""
    if value is None:
        return Rejected("decode:no_value", "the record has no value (a tombstone?)")
    try:
        name, _version, record = schemas.decode(value)
    except schemas.DecodeError as exc:
        return Rejected(f"decode:{exc.code}", exc.reason)
    event_id = record.get("event_id") if isinstance(record.get("event_id"), str) else None
    if name == "erasure" and _PSEUDONYM.fullmatch(record["subject_pseudonym"]):
        return erasure_from(record)
    if name != RECORD:
        return Rejected(
            "validate:unexpected_schema", f"a {name} record on the audit topic", event_id
        )
    if not _PSEUDONYM.fullmatch(record["subject_pseudonym"]):
        # Whatever it is (a CPR number by mistake?), it must not become an index key.
        return Rejected(
            "validate:not_a_pseudonym",
            "subject_pseudonym is not a 64-hex-digit pseudonym",
            event_id,
        )
    return decision_of(record, offset)


def decision_of(record: Mapping[str, Any], offset: int | None = None) -> AuditedDecision:
    """A decoded ``routing_decision`` record, with its deterministic id."""
    return AuditedDecision(
        decision_id=schemas.decision_id_of(record),
        subject_pseudonym=record["subject_pseudonym"],
        decided_at=record["decided_at"],
        event_type=record["event_type"],
        event_id=record["event_id"],
        decision=str(record["decision"]),
        routes=tuple(dict(route) for route in record["routes"]),
        reason=record["reason"],
        policy_version=record["policy_version"],
        held_until=record["held_until"],
        offset=offset,
    )
