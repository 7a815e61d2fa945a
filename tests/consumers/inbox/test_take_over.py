"""Taking over against the real broker: task_taken_over on task-acks.161 (the inbox's own
municipality's take-over topic), or a refusal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from bus.crypto import unseal_with
from consumers.inbox.settings import InboxSettings
from tests.support import sealed
from tests.support.inbox_harness import (
    TRACEPARENT,
    RunningInbox,
    api_tasks,
    csrf_of,
    inbox_settings,
    person,
    publish_task,
    read_all,
    routed_task,
    running_inbox,
    sign_in,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path) -> InboxSettings:
    return inbox_settings(kafka_bootstrap, unique, tmp_path)


def acks(running: RunningInbox) -> list[dict[str, object]]:
    return [s.record for s in read_all(running.settings, running.settings.acks_topic)]


def test_take_over_through_the_api_publishes_the_acknowledgement(settings: InboxSettings) -> None:
    who = person(11)
    task = routed_task(who)
    publish_task(settings, task)
    key = sealed.keyring(settings).sealing_key(who.pseudonym)  # as a connector made it
    with running_inbox(settings) as running, running.client() as client:
        token = running.add_caseworker("yu-7", "youth_unit")
        auth = {"Authorization": f"Bearer {token}"}
        listed = wait_until(lambda: api_tasks(client, token), "the task in the API")
        assert [t["task_id"] for t in listed] == [task["task_id"]]
        assert listed[0]["details"]["envelope.subject.cpr"] == who.cpr
        assert listed[0]["labels"]["envelope.subject.cpr"] == "CPR number"

        response = client.post(
            f"/api/tasks/{task['task_id']}/take-over", headers=auth, json={"note": "phoned"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["taken_over"]["taken_over_by"] == "yu-7"
        assert api_tasks(client, token) == []

        seen = read_all(settings, settings.topics.task_acks_of("161"))
        assert len(seen) == 1
        ack = seen[0]
        assert ack.name == "task_taken_over"
        assert ack.key == who.pseudonym.encode()
        assert {k: ack.record[k] for k in ("task_id", "unit", "kommunekode", "taken_over_by")} == {
            "task_id": task["task_id"],
            "unit": "youth_unit",
            "kommunekode": "161",
            "taken_over_by": "yu-7",
        }
        # The note travels sealed with the person's key, never in the clear.
        assert ack.record["note"] is None
        assert unseal_with(key, ack.record["sealed_note"]) == b"phoned"
        # In the task's trace, sent by the take-over's own span (see test_inbox_tracing).
        _, trace_id, span_id, _ = ack.headers["traceparent"].decode().split("-")
        assert (trace_id, span_id) != tuple(TRACEPARENT.split("-")[1:3])
        assert trace_id == TRACEPARENT.split("-")[1]
        assert ack.headers["ce_type"] == b"dk.ungebus.task_taken_over.v1"
        assert ack.headers["ce_subject"] == who.pseudonym.encode()
        assert who.cpr.encode() not in b"".join(ack.headers.values())

        # A retry by the same caseworker is a success that sends nothing more; another gets 409.
        again = client.post(f"/api/tasks/{task['task_id']}/take-over", headers=auth)
        assert again.status_code == 200
        other = running.add_caseworker("yu-8", "youth_unit")
        refused = client.post(
            f"/api/tasks/{task['task_id']}/take-over", headers={"Authorization": f"Bearer {other}"}
        )
        assert refused.status_code == 409
        assert "yu-7" in refused.json()["detail"]
        assert len(acks(running)) == 1


def test_take_over_through_the_page_form(settings: InboxSettings) -> None:
    who = person(12)
    task = routed_task(who)
    overdue = routed_task(person(13), due_in=-dt.timedelta(hours=3), disclose_identity=False)
    publish_task(settings, task)
    publish_task(settings, overdue)
    with running_inbox(settings) as running, running.client() as client:
        demo = running.inbox.demo
        assert demo is not None
        csrf = sign_in(client, demo.staff_id, demo.password)
        page = wait_until(
            lambda: (text := client.get("/tasks").text).count("data-task-id=") >= 2 and text,
            "both tasks on the page",
        )
        assert who.name in page and who.cpr in page
        assert person(13).cpr not in page and "not disclosed to this unit" in page
        assert 'class="overdue"' in page and "overdue by 3 h" in page
        assert "KUI-loven § 12 c" in page and "Glostrup Gymnasium" in page

        task_page = client.get(f"/tasks/{task['task_id']}").text
        assert "CPR number" in task_page and "Left on" in task_page

        without_csrf = client.post(f"/tasks/{task['task_id']}/take-over", data={"note": ""})
        assert without_csrf.status_code == 403
        assert acks(running) == []

        done = client.post(
            f"/tasks/{task['task_id']}/take-over", data={"csrf_token": csrf, "note": ""}
        )
        assert done.status_code == 303
        assert (
            f"Taken over by <strong>{demo.staff_id}</strong>"
            in client.get(f"/tasks/{task['task_id']}").text
        )
        [ack] = acks(running)
        assert (ack["task_id"], ack["taken_over_by"], ack["unit"], ack["kommunekode"]) == (
            task["task_id"],
            demo.staff_id,
            "youth_unit",
            "161",
        )


def test_another_units_task_is_not_found_and_unknown_tasks_are_refused(
    settings: InboxSettings,
) -> None:
    who = person(14)
    jobcentre_task = routed_task(who, unit="jobcentre")
    publish_task(settings, jobcentre_task)
    with running_inbox(settings) as running, running.client() as client:
        jobcentre = running.add_caseworker("jc-1", "jobcentre")
        youth = running.add_caseworker("yu-9", "youth_unit")
        wait_until(lambda: api_tasks(client, jobcentre), "the jobcentre task")
        task_id = jobcentre_task["task_id"]
        as_youth = {"Authorization": f"Bearer {youth}"}

        assert api_tasks(client, youth) == []
        response = client.get(f"/api/tasks/{task_id}", headers=as_youth)
        assert response.status_code == 404
        assert who.cpr not in response.text and who.name not in response.text
        refused = client.post(f"/api/tasks/{task_id}/take-over", headers=as_youth)
        assert refused.status_code == 404
        assert "youth_unit" in refused.json()["detail"]
        unknown = client.post("/api/tasks/no-such-task/take-over", headers=as_youth)
        assert unknown.status_code == 404
        assert unknown.json()["detail"] == "No task no-such-task in the inbox of youth_unit in 161."

        demo = running.inbox.demo
        assert demo is not None
        csrf = sign_in(client, demo.staff_id, demo.password)
        page = client.get(f"/tasks/{task_id}")
        assert page.status_code == 404
        assert who.cpr not in page.text and who.name not in page.text
        form = client.post(f"/tasks/{task_id}/take-over", data={"csrf_token": csrf})
        assert form.status_code == 404

        assert acks(running) == []  # nothing was published for any refused take-over
        assert client.get("/api/tasks", headers={"Authorization": "Bearer nope"}).status_code == 401
        # With a session, the API's unsafe methods need the CSRF header.
        assert client.post(f"/api/tasks/{task_id}/take-over").status_code == 403
        assert csrf_of(client.get("/tasks").text) == csrf
