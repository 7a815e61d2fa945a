"""A routing decision, and an erasure, as the audit store keeps them (no wire format here:
``ungebus audit`` imports this and the store, never the Avro codec)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bus.erasure.fact import Erasure


@dataclass(frozen=True)
class AuditedDecision:
    """One routing decision as the audit store keeps it; ``routes`` as in the Avro record."""

    decision_id: str
    subject_pseudonym: str
    decided_at: dt.datetime
    event_type: str
    event_id: str
    decision: str
    routes: tuple[Mapping[str, Any], ...]
    reason: str
    policy_version: str
    held_until: dt.datetime | None
    # Where the audit trail has it (its partition is the person's): decisions decided in the
    # same millisecond (a consent releasing two held events) keep the order the router wrote.
    offset: int | None = None


# An erasure as the audit store keeps it is the bus's own (pseudonymous) erasure.
AuditedErasure = Erasure
