"""The inbox on PostgreSQL, as a municipality runs it: tasks read from the real broker into the
session's PostgreSQL server (a database of this test's own), each stored once however often it
is delivered, and a take-over published once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from consumers.inbox.service import Inbox
from consumers.inbox.settings import InboxSettings
from tests.support.inbox_harness import (
    api_tasks,
    inbox_settings,
    person,
    publish_task,
    read_all,
    routed_task,
    running_inbox,
    task_rows,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path, postgres_url: str
) -> InboxSettings:
    return inbox_settings(kafka_bootstrap, unique, tmp_path, inbox_database_url=postgres_url)


def test_tasks_from_kafka_are_stored_once_in_postgresql_and_taken_over_once(
    settings: InboxSettings,
) -> None:
    assert settings.database_url.startswith("postgresql+psycopg://")
    tasks = [routed_task(person(seed)) for seed in (41, 42, 43)]
    for task in tasks:
        publish_task(settings, task)
    publish_task(settings, tasks[0])  # the router's retry: delivered twice
    first = tasks[0]["task_id"]

    with running_inbox(settings) as running, running.client() as client:
        token = running.add_caseworker("yu-41", "youth_unit")
        auth = {"Authorization": f"Bearer {token}"}
        wait_until(lambda: len(api_tasks(client, token)) == 3, "three tasks in the API")
        assert task_rows(settings) == {task["task_id"]: 1 for task in tasks}

        taken = client.post(f"/api/tasks/{first}/take-over", headers=auth, json={"note": "met"})
        assert taken.status_code == 200, taken.text
        again = client.post(f"/api/tasks/{first}/take-over", headers=auth)  # a retry
        assert again.status_code == 200, again.text
        assert {t["task_id"] for t in api_tasks(client, token)} == {t["task_id"] for t in tasks[1:]}

    # Offsets lost (a new consumer group): every record delivered again, nothing new stored,
    # and the take-over stands.
    replay = settings.model_copy(update={"inbox_group_id": settings.group_id + ".replay"})
    inbox = Inbox.open(replay)
    try:
        handled: list[int] = []
        wait_until(
            lambda: handled.append(inbox.feed.poll_once(timeout_s=0.2)) or sum(handled) >= 4,
            "the replay of all four records",
        )
        stored = inbox.store.task("161", "youth_unit", first)
        assert stored is not None and stored.take_over is not None
        assert stored.take_over.taken_over_by == "yu-41"
    finally:
        inbox.close()
    assert task_rows(settings) == {task["task_id"]: 1 for task in tasks}

    acks = read_all(settings, settings.topics.task_acks_of("161"))
    assert [(a.name, a.record["task_id"]) for a in acks] == [("task_taken_over", first)]
