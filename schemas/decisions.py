"""The identity of a routing decision: one id however often the router writes it down.

After a restart the router handles again what it had not committed, so ``audit.routing`` can
hold the same decision twice with different ``decided_at``. The id is therefore built only
from what makes a decision this decision: the event, the policy version, the outcome and the
tasks it made. The task ids belong to it because one event can be routed twice under one
policy version (its statutory route first, a consent-based one later), and those are two
decisions. The router puts the id in the ``ce_id`` header; the audit store computes it from
the record's own fields (so records written before the id existed dedupe too).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

# Fixed forever: changing it changes every decision id, and the audit store's dedup with it.
DECISION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:ungebus:routing-decision")


def decision_id(event_id: str, policy_version: str, outcome: str, task_ids: Iterable[str]) -> str:
    """A UUIDv5 of the decision's identity; the order of the task ids does not matter."""
    # JSON, not a joined string: no choice of event id can make two decisions' names collide.
    name = json.dumps([event_id, policy_version, outcome, sorted(task_ids)], ensure_ascii=False)
    return str(uuid.uuid5(DECISION_NAMESPACE, name))


def decision_id_of(record: Mapping[str, Any]) -> str:
    """The id of a decoded ``routing_decision`` record."""
    return decision_id(
        record["event_id"],
        record["policy_version"],
        str(record["decision"]),
        (route["task_id"] for route in record["routes"]),
    )
