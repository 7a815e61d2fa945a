"""Names the contracts share with the domain: municipalities, units, event types, partner kinds.

Event types follow CloudEvents: ``dk.ungebus.<schema name>.v<major>``. The major changes only
with a breaking change (which needs a new schema name); compatible schema versions
(dropout_notice v1 -> v2) keep it, so the routing policy does not follow every field added.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final

NAMESPACE: Final = "dk.ungebus"

# Vestegnen: the municipalities on the bus, by kommunekode.
KOMMUNEKODER: Final = MappingProxyType(
    {
        "151": "Ballerup",
        "153": "Brøndby",
        "161": "Glostrup",
        "163": "Herlev",
        "165": "Albertslund",
        "167": "Hvidovre",
        "169": "Høje-Taastrup",
        "175": "Rødovre",
        "183": "Ishøj",
        "187": "Vallensbæk",
    }
)

# Every Danish municipality's code lies in this range (101 København .. 860 Hjørring).
DANISH_KOMMUNEKODE_RANGE: Final = range(101, 861)

UNITS: Final = ("youth_unit", "jobcentre", "family_services", "social_services", "ssp")


class EventType(StrEnum):
    """CloudEvents ``type`` of every event on the bus (also ``envelope.event_type``)."""

    DROPOUT_NOTICE = f"{NAMESPACE}.dropout_notice.v1"
    RELEASE_PLANNING = f"{NAMESPACE}.release_planning.v1"
    HANDOVER = f"{NAMESPACE}.handover.v1"
    SCHOOL_ABSENCE_SIGNAL = f"{NAMESPACE}.school_absence_signal.v1"
    CONSENT_GRANTED = f"{NAMESPACE}.consent_granted.v1"
    CONSENT_WITHDRAWN = f"{NAMESPACE}.consent_withdrawn.v1"
    ROUTED_TASK = f"{NAMESPACE}.routed_task.v1"
    TASK_TAKEN_OVER = f"{NAMESPACE}.task_taken_over.v1"
    TASK_ESCALATED = f"{NAMESPACE}.task_escalated.v1"
    ROUTING_DECISION = f"{NAMESPACE}.routing_decision.v1"
    DEAD_LETTER = f"{NAMESPACE}.dead_letter.v1"
    HANDOVER_STATUS = f"{NAMESPACE}.handover_status.v1"
    OPERATOR_ACTION = f"{NAMESPACE}.operator_action.v1"
    ERASURE = f"{NAMESPACE}.erasure.v1"


def event_type_of(name: str) -> EventType:
    """The event type for a schema name, e.g. dropout_notice -> dk.ungebus.dropout_notice.v1."""
    return EventType[name.upper()]


def schema_name_of(event_type: str) -> str:
    """The schema name for an event type; ValueError for a type the bus does not carry."""
    return EventType(event_type).name.lower()


# What partners send (one edge model each) and the schema each maps to.
PARTNER_KINDS: Final = MappingProxyType(
    {
        "dropout_notice": "dropout_notice",
        "release_planning_prison": "release_planning",
        "release_planning_psychiatry": "release_planning",
        "handover_uu": "handover",
        "handover_municipality": "handover",
        "school_absence_signal": "school_absence_signal",
        "consent_granted": "consent_granted",
        "consent_withdrawn": "consent_withdrawn",
    }
)
