"""Span attribute names and the messaging conventions every hop uses.

Attributes carry ids, kinds, units and codes; never CPR numbers, pseudonyms (record keys),
names or free text.
"""

from __future__ import annotations

from typing import Any

# Domain attributes: spans are found by these names (``ungebus trace``), so use the constants.
EVENT_ID = "ungebus.event_id"
EVENT_KIND = "ungebus.event_kind"
SOURCE_KIND = "ungebus.source_kind"
OUTCOME = "ungebus.outcome"
UNIT = "ungebus.unit"
KOMMUNEKODE = "ungebus.kommunekode"
BASIS = "ungebus.basis"
TASK_ID = "ungebus.task_id"
RULE_ID = "ungebus.rule_id"
PARTNER = "ungebus.partner"
NAMESPACE = "ungebus"
LAG_METRIC = "ungebus.consumer.lag"

_OPERATIONS = ("send", "receive", "process")
_FORBIDDEN_ATTRIBUTES = frozenset({"messaging.kafka.message.key", "messaging.message.body.size"})


def messaging_attributes(
    operation: str,
    topic: str,
    partition: int | None = None,
    offset: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Messaging semantic conventions for Kafka; never the record key (a pseudonym).

    ``consumer_group=`` is short for ``messaging.consumer.group.name``; other keywords (pass
    dotted names with ``**{...}``) are added as they are, None values left out.
    """
    if operation not in _OPERATIONS:
        raise ValueError(f"operation must be one of {', '.join(_OPERATIONS)}, not {operation!r}")
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": topic,
    }
    if partition is not None:
        attributes["messaging.destination.partition.id"] = str(partition)
    if offset is not None:
        attributes["messaging.kafka.offset"] = int(offset)
    group = extra.pop("consumer_group", None)
    if group is not None:
        attributes["messaging.consumer.group.name"] = group
    for key, value in extra.items():
        if key in _FORBIDDEN_ATTRIBUTES:
            raise ValueError(f"{key} is never recorded: record keys are pseudonyms")
        if value is not None:
            attributes[key] = value
    return attributes


def span_name(operation: str, topic: str) -> str:
    """``send ungebus.inbound.dropout_notice``: the messaging span name convention."""
    return f"{operation} {topic}"
