"""One young person's handovers, as the tracker keeps them: open tasks, recently closed ones,
take-overs seen before their task; and the JSON form of that state in the tracker's table.

Pure values, like ``streams.routing.consent`` and ``streams.routing.held`` for the router;
the fold over tasks and take-overs is ``streams.handover.tracker``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import schemas


@dataclass(frozen=True)
class OpenTask:
    task_id: str
    event_id: str
    event_type: str
    unit: str
    kommunekode: str
    due_by: dt.datetime
    sender_kommunekode: str | None = None  # a handover from another municipality on the bus
    escalated: bool = False
    traceparent: str | None = None


@dataclass(frozen=True)
class Acknowledgement:
    """A take-over, kept while its task has not come yet (the topics are read independently).

    ``topic`` is the municipality's take-over topic it came on (``task-acks.<kommunekode>``):
    which municipality wrote it, checked against the task's once the task is known.
    """

    record: Mapping[str, Any]
    wire: bytes
    received_at: dt.datetime
    topic: str
    position: tuple[int, int] = (-1, -1)  # partition, offset on ``topic``


@dataclass(frozen=True)
class Handovers:
    """One young person's tasks: open, recently closed (to ignore repeats), early acks."""

    open: Mapping[str, OpenTask] = field(default_factory=dict)
    closed: Mapping[str, dt.datetime] = field(default_factory=dict)
    early: Mapping[str, Acknowledgement] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.open or self.closed or self.early)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "open": {k: _task_to_dict(v) for k, v in self.open.items()},
                "closed": {k: v.isoformat() for k, v in self.closed.items()},
                "early": {
                    k: {
                        "wire": v.wire.hex(),
                        "received_at": v.received_at.isoformat(),
                        "topic": v.topic,
                        "position": list(v.position),
                    }
                    for k, v in self.early.items()
                },
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes | None) -> Handovers:
        if not data:
            return cls()
        raw = json.loads(data)
        early = {}
        for task_id, entry in raw["early"].items():
            wire = bytes.fromhex(entry["wire"])
            received = dt.datetime.fromisoformat(entry["received_at"])
            position = (int(entry["position"][0]), int(entry["position"][1]))
            # No topic (kept before take-overs had one per municipality): nobody can tell who
            # wrote it, so it is refused once its task is known.
            topic = str(entry.get("topic", ""))
            record = schemas.decode(wire).record
            early[task_id] = Acknowledgement(record, wire, received, topic, position)
        return cls(
            open={k: _task_from_dict(v) for k, v in raw["open"].items()},
            closed={k: dt.datetime.fromisoformat(v) for k, v in raw["closed"].items()},
            early=early,
        )


def _task_to_dict(task: OpenTask) -> dict[str, Any]:
    # A plain dict of the fields: dataclasses.asdict deep-copies every value (slow per task).
    raw = {f.name: getattr(task, f.name) for f in fields(OpenTask)}
    raw["due_by"] = task.due_by.isoformat()
    return raw


def _task_from_dict(raw: Mapping[str, Any]) -> OpenTask:
    return OpenTask(**{**raw, "due_by": dt.datetime.fromisoformat(raw["due_by"])})
