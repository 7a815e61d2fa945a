"""Whether a take-over may close its task: municipality by topic, unit by record."""

from __future__ import annotations

import datetime as dt
from typing import Any

from streams.handover.refusals import take_over_refusal
from streams.handover.state import OpenTask

DUE = dt.datetime(2026, 11, 2, 10, tzinfo=dt.UTC)
TASK = OpenTask("t-9", "e-9", "dk.ungebus.dropout_notice.v1", "youth_unit", "165", DUE)


def _ack(unit: str = "youth_unit", kommunekode: str = "165") -> dict[str, Any]:
    return {"task_id": "t-9", "unit": unit, "kommunekode": kommunekode}


def test_the_tasks_own_unit_on_its_municipalitys_topic_may_close_it() -> None:
    assert take_over_refusal(TASK, _ack(), "task-acks.165", "165") is None


def test_another_municipalitys_topic_is_refused_naming_both_kommunekoder() -> None:
    # The record claims the right unit; the topic (what its writer may write) does not match.
    reason = take_over_refusal(TASK, _ack(), "task-acks.161", "161")
    assert reason == (
        "rejected take-over of task t-9: it belongs to municipality 165, the take-over came on "
        "the take-over topic of municipality 161 (task-acks.161); not applied"
    )


def test_another_unit_of_the_same_municipality_is_refused() -> None:
    reason = take_over_refusal(TASK, _ack(unit="jobcentre"), "task-acks.165", "165")
    assert reason is not None
    assert "belongs to youth_unit in 165, the acknowledgement came from jobcentre in 165" in reason


def test_a_record_claiming_another_municipality_on_the_right_topic_is_refused() -> None:
    reason = take_over_refusal(TASK, _ack(kommunekode="161"), "task-acks.165", "165")
    assert reason is not None and "came from youth_unit in 161" in reason


def test_a_take_over_from_no_municipalitys_topic_is_refused() -> None:
    # e.g. one kept in the tracker's state from before take-overs had a topic per municipality
    reason = take_over_refusal(TASK, _ack(), "", None)
    assert reason is not None and "no municipality's take-over topic" in reason
