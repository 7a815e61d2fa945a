"""The inbox's feed against the real broker: each task stored once, nothing lost."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Producer

from consumers.inbox.service import Inbox
from consumers.inbox.settings import InboxSettings
from tests.support.harness import HOSTILE_PRODUCER
from tests.support.inbox_harness import (
    escalation,
    inbox_settings,
    person,
    publish,
    publish_raw,
    publish_task,
    read_all,
    routed_task,
    running_inbox,
    sign_in,
    task_rows,
    wait_until,
)

pytestmark = pytest.mark.integration


def drain(inbox: Inbox, until: Callable[[], bool], what: str) -> None:
    """Poll the feed in this thread until ``until()``."""
    wait_until(lambda: inbox.feed.poll_once(timeout_s=0.2) >= 0 and until(), what)


@pytest.fixture
def settings(kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path) -> InboxSettings:
    return inbox_settings(kafka_bootstrap, unique, tmp_path)


def test_duplicate_delivery_and_restarts_store_each_task_once(settings: InboxSettings) -> None:
    first, second = routed_task(person(1)), routed_task(person(2))
    inbox = Inbox.open(settings)
    try:
        publish_task(settings, first)
        publish_task(settings, first)  # the router's retry: delivered twice
        drain(inbox, lambda: first["task_id"] in task_rows(settings), "the first task")
    finally:
        inbox.close()

    # A restart in the same consumer group, then a delivery of the same record once more.
    publish_task(settings, first)
    publish_task(settings, second)
    inbox = Inbox.open(settings)
    try:
        drain(inbox, lambda: second["task_id"] in task_rows(settings), "the second task")
        taken = inbox.store.task("161", "youth_unit", first["task_id"])
        assert taken is not None
    finally:
        inbox.close()
    assert task_rows(settings) == {first["task_id"]: 1, second["task_id"]: 1}

    # Offsets lost (a new consumer group) re-deliver everything: still one row per task.
    replay = settings.model_copy(update={"inbox_group_id": settings.group_id + ".replay"})
    inbox = Inbox.open(replay)
    try:
        handled: list[int] = []
        wait_until(
            lambda: handled.append(inbox.feed.poll_once(timeout_s=0.2)) or sum(handled) >= 4,
            "the replay of all four records",
        )
    finally:
        inbox.close()
    assert task_rows(settings) == {first["task_id"]: 1, second["task_id"]: 1}


def test_undecodable_record_goes_to_dead_letter_and_the_next_task_is_stored(
    settings: InboxSettings, caplog: pytest.LogCaptureFixture
) -> None:
    topic = settings.topics.tasks("161", "youth_unit")
    misrouted = routed_task(person(3), unit="jobcentre")  # a jobcentre task on the youth topic
    good = routed_task(person(4))
    garbage = b"\x00\x00\x00\x63not avro at all"
    publish_raw(settings, topic, garbage, b"some-pseudonym", None)
    publish(settings, topic, "routed_task", misrouted)
    publish_task(settings, good)

    caplog.set_level(logging.INFO)
    inbox = Inbox.open(settings)

    # The three keys may fall on three partitions, read in any order: drain until each is done.
    def all_handled() -> bool:
        letters = [s for s in read_all(settings, settings.topics.deadletter) if s.name]
        return good["task_id"] in task_rows(settings) and len(letters) >= 2

    try:
        drain(inbox, all_handled, "the task and both dead letters")
    finally:
        inbox.close()

    assert task_rows(settings) == {good["task_id"]: 1}
    letters = [s for s in read_all(settings, settings.topics.deadletter) if s.name]
    assert [(s.record["component"], s.record["source_topic"]) for s in letters] == [
        ("inbox", topic),
        ("inbox", topic),
    ]
    # The two went to different partitions (their keys differ), both at offset 0: tell them
    # apart by what was sent, not by where.
    undecodable, wrong_unit = sorted(letters, key=lambda s: s.record["original_value"] != garbage)
    assert undecodable.record["error_type"].startswith("decode:")
    assert undecodable.record["original_value"] == garbage
    assert wrong_unit.record["error_type"] == "validate:wrong_recipient"
    assert wrong_unit.record["event_id"] == misrouted["event_id"]
    assert person(3).cpr not in caplog.text and person(4).cpr not in caplog.text
    assert "dead-lettering" in caplog.text

    # The offsets were committed after the dead letters: a restart reads nothing again.
    inbox = Inbox.open(settings)
    try:
        assert sum(inbox.feed.poll_once(timeout_s=0.5) for _ in range(4)) == 0
    finally:
        inbox.close()


def test_an_escalation_shows_on_the_page_and_in_the_api(settings: InboxSettings) -> None:
    task = routed_task(person(5))
    publish_task(settings, task)
    publish(settings, settings.topics.escalations("161", "youth_unit"), "task_escalated",
            escalation(task))  # fmt: skip
    with running_inbox(settings) as running, running.client() as client:
        assert running.inbox.demo is not None
        token = running.add_caseworker("yu-1", "youth_unit")
        auth = {"Authorization": f"Bearer {token}"}
        found = wait_until(
            lambda: client.get("/api/escalations", headers=auth).json()["escalations"],
            "the escalation in the API",
        )
        assert [(e["task_id"], e["level"], e["escalated_to"]) for e in found] == [
            (task["task_id"], 1, "unit_lead")
        ]
        sign_in(client, running.inbox.demo.staff_id, running.inbox.demo.password)
        page = client.get("/tasks").text
        assert 'id="escalations"' in page
        assert "not taken over 2 working days after due" in page
        assert "escalated" in page
        detail = client.get(f"/api/tasks/{task['task_id']}", headers=auth).json()
        assert detail["escalations"][0]["reason"] == "not taken over 2 working days after due"


def test_a_record_too_large_to_copy_is_dead_lettered_by_reference_and_the_next_task_stored(
    settings: InboxSettings,
) -> None:
    topic = settings.topics.tasks("161", "youth_unit")
    huge = b"\x00" + (3101).to_bytes(4, "big") + os.urandom(1_040_000)  # over the producer's
    producer = Producer(settings.producer_config(**HOSTILE_PRODUCER))
    producer.produce(topic, key=person(5).pseudonym.encode(), value=huge)
    assert producer.flush(30) == 0
    good = routed_task(person(5))  # the same person: behind it in the same partition
    publish_task(settings, good)

    inbox = Inbox.open(settings)
    try:
        drain(inbox, lambda: good["task_id"] in task_rows(settings), "the task after the huge one")
    finally:
        inbox.close()

    [letter] = wait_until(
        lambda: [s for s in read_all(settings, settings.topics.deadletter) if s.name] or None,
        "the dead letter",
    )
    record = letter.record
    assert record["error_type"] == "decode:oversized"
    assert record["original_value"] is None
    assert record["original_value_sha256"] == hashlib.sha256(huge).hexdigest()
    assert f"it stays at {topic}/" in record["reason"]
