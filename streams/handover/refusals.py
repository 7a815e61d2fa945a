"""Whether a take-over may close its task: the checks, pure, one reason per refusal.

A take-over comes on its municipality's own topic (``task-acks.<kommunekode>``, which only
that municipality's inbox may write), so the topic says who wrote it; the record says which
unit took over. Both must be the task's. A reason names task ids, units and kommunekoder,
never a person.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.handover.state import OpenTask


def take_over_refusal(
    task: OpenTask, ack: Mapping[str, Any], topic: str, topic_kommunekode: str | None
) -> str | None:
    """Why the take-over ``ack``, read from ``topic`` (the take-over topic of
    ``topic_kommunekode``, None if it is no municipality's), must not close ``task``; None if
    it may."""
    head = f"rejected take-over of task {task.task_id}"
    if topic_kommunekode is None:
        return f"{head}: it came on {topic!r}, no municipality's take-over topic; not applied"
    if topic_kommunekode != task.kommunekode:
        return (
            f"{head}: it belongs to municipality {task.kommunekode}, the take-over came on "
            f"the take-over topic of municipality {topic_kommunekode} ({topic}); not applied"
        )
    if (ack["unit"], ack["kommunekode"]) != (task.unit, task.kommunekode):
        return (
            f"{head}: it belongs to {task.unit} in {task.kommunekode}, the acknowledgement "
            f"came from {ack['unit']} in {ack['kommunekode']}; not applied"
        )
    return None
