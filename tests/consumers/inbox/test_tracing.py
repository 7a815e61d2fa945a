"""Inbox tracing against the real broker: a task is processed in its event's trace, and the
take-over lands in that trace too (linked to the caseworker's request), as do dead letters.
The counts and the consumer lag are on the metrics endpoint; no span carries personal data.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from consumers.inbox.settings import InboxSettings
from tests.support.inbox_harness import (
    TRACEPARENT,
    api_tasks,
    inbox_settings,
    person,
    publish_raw,
    publish_task,
    read_all,
    routed_task,
    running_inbox,
    wait_until,
)
from tests.support.pii import assert_no_personal_data
from tests.support.traced import Traced, by_name, hex_id, metric_value

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_telemetry")]
_, TRACE_ID, PARENT_ID, _ = TRACEPARENT.split("-")
BROKEN_TRACE = "00-" + "e" * 32 + "-" + "f" * 16 + "-01"


@pytest.fixture
def settings(kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path) -> InboxSettings:
    return inbox_settings(kafka_bootstrap, unique, tmp_path)


def spans_named(spans: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["name"] == name]


def test_a_task_and_its_take_over_are_in_the_events_trace(
    settings: InboxSettings, tmp_path: Path
) -> None:
    who = person(21)
    task = routed_task(who)
    tasks_topic = settings.topics.tasks("161", "youth_unit")
    acks_topic = settings.acks_topic
    publish_task(settings, task)
    publish_task(settings, task)  # the router's retry: a duplicate
    publish_raw(settings, tasks_topic, b"\x00garbage", who.pseudonym.encode(), BROKEN_TRACE)
    with Traced(tmp_path / "telemetry", "ungebus-inbox") as traced:
        with running_inbox(settings) as running, running.client() as client:
            token = running.add_caseworker("yu-21", "youth_unit")
            wait_until(lambda: api_tasks(client, token), "the task in the API")
            wait_until(
                lambda: len(read_all(settings, settings.topics.deadletter)) == 1, "the dead letter"
            )
            response = client.post(
                f"/api/tasks/{task['task_id']}/take-over",
                headers={"Authorization": f"Bearer {token}"},
                json={"note": f"phoned {who.name}"},
            )
            assert response.status_code == 200, response.text
            processed = wait_until(
                lambda: (
                    len(found := spans_named(traced.spans(), f"process {tasks_topic}")) == 3
                    and found
                ),
                "a span for each of the three records",
            )
            text = traced.scrape()
        spans = traced.spans()

    # Each record continues the trace its traceparent names.
    outcomes = sorted(s["attributes"]["ungebus.outcome"] for s in processed)
    assert outcomes == ["dead_letter", "duplicate", "stored"]
    stored = next(s for s in processed if s["attributes"]["ungebus.outcome"] == "stored")
    assert stored["context"]["trace_id"] == "0x" + TRACE_ID
    assert stored["parent_id"] == "0x" + PARENT_ID and stored["kind"] == "SpanKind.CONSUMER"
    assert (
        stored["attributes"]
        | {
            "ungebus.task_id": task["task_id"],
            "ungebus.event_id": task["event_id"],
            "ungebus.unit": "youth_unit",
            "ungebus.kommunekode": "161",
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": tasks_topic,
            "messaging.consumer.group.name": settings.group_id,
        }
        == stored["attributes"]
    )
    assert "messaging.kafka.offset" in stored["attributes"]

    # The take-over: a child of the task's traceparent, linked to the caseworker's request,
    # and its context is the acknowledgement's traceparent.
    request = by_name(spans, "POST /api/tasks/{task_id}/take-over")
    assert request["kind"] == "SpanKind.SERVER"
    assert request["attributes"]["ungebus.outcome"] == "taken_over"
    send = by_name(spans, f"send {acks_topic}")
    assert send["kind"] == "SpanKind.PRODUCER"
    assert send["context"]["trace_id"] == "0x" + TRACE_ID
    assert send["parent_id"] == "0x" + PARENT_ID
    (link,) = send["links"]
    assert link["context"]["span_id"] == request["context"]["span_id"]
    assert (
        send["attributes"]
        | {
            "ungebus.task_id": task["task_id"],
            "ungebus.unit": "youth_unit",
            "ungebus.outcome": "taken_over",
            "messaging.destination.name": acks_topic,
        }
        == send["attributes"]
    )
    (ack,) = read_all(settings, acks_topic)
    _, ack_trace, ack_parent, _ = ack.headers["traceparent"].decode().split("-")
    assert (ack_trace, int(ack_parent, 16)) == (TRACE_ID, hex_id(send["context"]["span_id"]))
    assert send["attributes"]["messaging.kafka.offset"] == 0

    # The dead letter is in the trace of the record that could not be read.
    broken = next(s for s in processed if s["attributes"]["ungebus.outcome"] == "dead_letter")
    assert broken["status"]["status_code"] == "ERROR"
    (dead,) = read_all(settings, settings.topics.deadletter)
    _, dead_trace, dead_parent, _ = dead.headers["traceparent"].decode().split("-")
    assert (dead_trace, int(dead_parent, 16)) == ("e" * 32, hex_id(broken["context"]["span_id"]))

    labels = {"ungebus_unit": "youth_unit", "ungebus_kommunekode": "161"}
    assert metric_value(text, "ungebus_tasks_stored_total", **labels) == 1, text
    assert metric_value(text, "ungebus_tasks_taken_over_total", **labels) == 1
    error_type = broken["attributes"]["ungebus.error_type"]
    assert (
        metric_value(text, "ungebus_deadletters_total", ungebus_component="inbox",
                     ungebus_error_type=error_type) == 1
    )  # fmt: skip
    lag = {"messaging_consumer_group_name": settings.group_id}
    assert (
        metric_value(text, "ungebus_consumer_lag", messaging_destination_name=tasks_topic, **lag)
        == 0
    )

    assert_no_personal_data(spans, [who.cpr, who.pseudonym, who.name])
