"""Events waiting for consent, and the event ids already seen, per young person.

Both live in faust tables keyed by subject pseudonym (next to the consent table), as JSON.
Pure values: the router computes new ones and the faust shell writes them.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class HeldEvent:
    """An event with at least one route waiting for consent; its original bytes are kept."""

    event_id: str
    wire_bytes: bytes
    until: dt.datetime
    issued_task_ids: frozenset[str] = frozenset()
    traceparent: str | None = None

    def issued(self, task_ids: set[str]) -> HeldEvent:
        return replace(self, issued_task_ids=self.issued_task_ids | task_ids)


def held_to_json(held: tuple[HeldEvent, ...]) -> bytes:
    return json.dumps(
        [
            {
                "event_id": h.event_id,
                "wire_bytes": base64.b64encode(h.wire_bytes).decode(),
                "until": h.until.isoformat(),
                "issued_task_ids": sorted(h.issued_task_ids),
                "traceparent": h.traceparent,
            }
            for h in held
        ]
    ).encode()


def held_from_json(data: bytes | None) -> tuple[HeldEvent, ...]:
    if not data:
        return ()
    return tuple(
        HeldEvent(
            event_id=raw["event_id"],
            wire_bytes=base64.b64decode(raw["wire_bytes"]),
            until=dt.datetime.fromisoformat(raw["until"]),
            issued_task_ids=frozenset(raw["issued_task_ids"]),
            traceparent=raw.get("traceparent"),
        )
        for raw in json.loads(data)
    )


@dataclass(frozen=True)
class SeenEvents:
    """Event ids routed for one person, with when they occurred; old ones are forgotten."""

    occurred: tuple[tuple[str, dt.datetime], ...] = ()

    def __contains__(self, event_id: object) -> bool:
        # A plain loop, not any(generator): asked for every routed event, and a few times faster.
        for seen_id, _ in self.occurred:  # noqa: SIM110
            if seen_id == event_id:
                return True
        return False

    def add(self, event_id: str, occurred_at: dt.datetime, keep_after: dt.datetime) -> SeenEvents:
        """Remember ``event_id``; forget ids of events that occurred before ``keep_after``."""
        kept = tuple((i, t) for i, t in self.occurred if t >= keep_after and i != event_id)
        return SeenEvents((*kept, (event_id, occurred_at)))

    def to_json(self) -> bytes:
        return json.dumps([[i, t.isoformat()] for i, t in self.occurred]).encode()

    @classmethod
    def from_json(cls, data: bytes | None) -> SeenEvents:
        if not data:
            return cls()
        return cls(tuple((i, dt.datetime.fromisoformat(t)) for i, t in json.loads(data)))
