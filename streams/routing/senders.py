"""Who may have sent a record: the partner registry, as the router checks it.

The connectors check every partner's kind and source before a record reaches the ordered
inbound topic; the router checks again (defence in depth), because Kafka is reachable by more
than the connectors and does not tell a consumer who produced a record. A record whose source
no partner may claim for its kind is never routed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bus.partners import SOURCES, PartnerRegistry
from schemas import PARTNER_KINDS


@dataclass(frozen=True)
class Senders:
    """The (schema name, source kind, source id) triples some partner may send."""

    allowed: frozenset[tuple[str, str, str]]

    @classmethod
    def from_registry(cls, registry: PartnerRegistry) -> Senders:
        allowed = set()
        for partner in registry.by_name.values():
            for kind in partner.kinds:
                source_kind = SOURCES[kind][0]
                allowed |= {
                    (PARTNER_KINDS[kind], skind, sid)
                    for skind, sid in partner.sources
                    if skind == source_kind
                }
        return cls(frozenset(allowed))

    def refusal(self, name: str, envelope: Mapping[str, Any]) -> str | None:
        """Why a ``name`` record with this envelope may not be routed; None when it may.

        The reason names the claimed source (an institution number, a kommunekode: never
        personal data) and the kind.
        """
        source = envelope["source"]
        if (name, source["kind"], source["id"]) in self.allowed:
            return None
        return (
            f"no partner may send {name} as {source['kind']}:{source['id']}: the sender is "
            "not in the partner registry for this kind, so the event is not routed"
        )
