"""The handover loop end to end: router -> inbox -> take over -> tracker; escalation when late.

One router process (``ungebus streams``, router and tracker) with a test policy in which a
child's move between municipalities must be taken over at once (``hours = 0``), so it is
overdue as soon as it is routed; the inbox of Glostrup (161) runs in-process on a free port.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import schemas
from bus.settings import Settings
from bus.topics import ensure_topics
from consumers.inbox.caseworkers import Caseworker, add_account
from consumers.inbox.service import BackgroundServer, Inbox
from consumers.inbox.settings import InboxSettings
from streams.routing.policy import DEFAULT_POLICY
from tests.support import records
from tests.support.harness import Reader, Seen, produce, running, settings_env

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Bus:
    settings: Settings
    reader: Reader
    inbox_url: str
    tokens: dict[str, str]  # unit -> API token of a caseworker in Glostrup


def _test_policy(path: Path) -> Path:
    text = DEFAULT_POLICY.read_text()
    rule = text.index('id = "handover.child_moved"')
    end = text.index("[[rules]]", rule)
    block = re.sub(
        r"take_over_within = \{[^}]*\}", "take_over_within = { hours = 0 }", text[rule:end]
    )
    path.write_text(text[:rule] + block + text[end:])
    return path


@pytest.fixture(scope="module")
def bus(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    tmp = tmp_path_factory.mktemp("tracker")
    prefix = f"tracker-{uuid.uuid4().hex[:8]}."
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, var_dir=tmp)
    specs = settings.topics.catalogue()
    ensure_topics(settings.kafka_config(), specs)
    watched = [
        s.name
        for s in specs
        if s.name.startswith((f"{prefix}escalations.", f"{prefix}handovers.", f"{prefix}tasks."))
        or s.name in (settings.topics.deadletter, *settings.topics.all_task_acks())
    ]
    reader = Reader(settings, watched, f"check-{uuid.uuid4().hex[:8]}")
    inbox_settings = InboxSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        var_dir=tmp / "inbox",
        inbox_kommunekode="161",
        inbox_units=("youth_unit", "family_services"),
    )
    tokens = {}
    for unit in ("youth_unit", "family_services"):
        token = add_account(
            inbox_settings.users_file,
            Caseworker(f"cw-{unit}", "161", unit),
            uuid.uuid4().hex,
            api_token=True,
        )
        assert token is not None
        tokens[unit] = token
    env = settings_env(
        settings,
        UNGEBUS_TRACKER_CHECK_INTERVAL_S="0.5",
        UNGEBUS_TRACKER_UNKNOWN_ACK_GRACE_S="1",
    )
    policy = _test_policy(tmp / "policy.toml")
    inbox = Inbox.open(inbox_settings)
    inbox.start_feed()
    server = BackgroundServer(inbox.app)
    url = server.start()
    try:
        with running(["streams", "--policy", str(policy), "--loglevel", "warn"], env, tmp / "log"):
            yield Bus(settings, reader, url, tokens)
    finally:
        server.stop()
        inbox.close()
        reader.close()


def _api(bus: Bus, unit: str) -> httpx.Client:
    return httpx.Client(
        base_url=bus.inbox_url, headers={"Authorization": f"Bearer {bus.tokens[unit]}"}, timeout=30
    )


def _task_in_inbox(bus: Bus, unit: str, event_id: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        tasks = _api(bus, unit).get("/api/tasks").json()["tasks"]
        return next((t for t in tasks if t["event_id"] == event_id), None)

    bus.reader.wait_for(lambda _: found() is not None, what=f"task of {event_id} in the inbox")
    task = found()
    assert task is not None
    return task


def _of(bus: Bus, name: str, **fields: Any) -> list[Seen]:
    return bus.reader.of(name, **fields)


def test_child_who_moved_overdue_escalates_and_the_sender_is_told_until_taken_over(
    bus: Bus,
) -> None:
    person = {"pseudonym": uuid.uuid4().hex * 2, "occurred_at": dt.datetime.now(dt.UTC)}
    event = records.handover("municipality", to="161", age=15, **person)  # from 153 Brøndby
    produce(bus.settings, [(bus.settings.topics.inbound_events, "handover", event)])
    event_id = event["envelope"]["event_id"]

    bus.reader.wait_for(
        lambda _: (
            _of(bus, "task_escalated", event_id=event_id)
            and _of(bus, "handover_status", event_id=event_id)
        ),
        what="escalation and word to the sender",
    )
    (escalated,) = _of(bus, "task_escalated", event_id=event_id)
    assert escalated.topic == bus.settings.topics.escalations("161", "family_services")
    assert escalated.record["escalated_to"] == "unit_lead"
    assert escalated.record["notify_kommunekode"] == "153"
    (told,) = _of(bus, "handover_status", event_id=event_id)
    assert told.topic == bus.settings.topics.handovers("153")
    assert told.record["status"] == "not_taken_over"

    task = _task_in_inbox(bus, "family_services", event_id)
    bus.reader.wait_for(
        lambda _: (
            _api(bus, "family_services").get(f"/api/tasks/{task['task_id']}").json()["escalations"]
        ),
        what="the escalation on the inbox's task",
    )
    answer = _api(bus, "family_services").post(f"/api/tasks/{task['task_id']}/take-over")
    assert answer.status_code == 200, answer.text

    bus.reader.wait_for(
        lambda _: len(_of(bus, "handover_status", event_id=event_id)) == 2,
        what="word to the sender that someone took over",
    )
    taken = _of(bus, "handover_status", event_id=event_id)[-1].record
    assert taken["status"] == "taken_over" and taken["taken_over_by"] == "cw-family_services"
    assert len(_of(bus, "task_escalated", event_id=event_id)) == 1


def test_take_over_closes_the_task_and_bad_acknowledgements_are_rejected(bus: Bus) -> None:
    settings = bus.settings
    person = {"pseudonym": uuid.uuid4().hex * 2, "occurred_at": dt.datetime.now(dt.UTC)}
    event = records.dropout_notice(age=16, **person)
    produce(settings, [(settings.topics.inbound_events, "dropout_notice", event)])
    task = _task_in_inbox(bus, "youth_unit", event["envelope"]["event_id"])
    forged = {
        "task_id": task["task_id"],
        "event_id": task["event_id"],
        "unit": "jobcentre",
        "kommunekode": "161",
        "subject_pseudonym": person["pseudonym"],
        "taken_over_by": "someone-else",
        "taken_over_at": dt.datetime.now(dt.UTC),
        "note": None,
        "sealed_note": None,
    }
    produce_ack(settings, "161", forged)  # another unit claims the youth unit's open task
    bus.reader.wait_for(lambda _: _rejections(bus, task["task_id"]), what="wrong unit rejected")
    (reason,) = _rejections(bus, task["task_id"])
    assert "belongs to youth_unit in 161" in reason and "from jobcentre" in reason

    answer = _api(bus, "youth_unit").post(f"/api/tasks/{task['task_id']}/take-over")
    assert answer.status_code == 200, answer.text
    bus.reader.wait_for(
        lambda _: _of(bus, "task_taken_over", task_id=task["task_id"], unit="youth_unit"),
        what="the take-over",
    )
    (ack,) = _of(bus, "task_taken_over", task_id=task["task_id"], unit="youth_unit")
    produce_ack(settings, "161", dict(ack.record))  # the same take-over again: changes nothing
    unknown = str(uuid.uuid4())
    produce_ack(settings, "161", {**ack.record, "task_id": unknown})  # a task that was never routed
    bus.reader.wait_for(lambda _: _rejections(bus, unknown), what="unknown task rejected")
    assert "no such task was routed" in _rejections(bus, unknown)[0]
    assert len(_rejections(bus, task["task_id"])) == 1  # the repeat was not rejected
    assert not _of(bus, "task_escalated", task_id=task["task_id"])


def test_take_over_on_another_municipalitys_topic_is_rejected_and_the_task_stays_open(
    bus: Bus,
) -> None:
    """Albertslund's (165) task, taken over on Glostrup's (161) take-over topic: what 161's
    inbox could write, claiming 165's own unit. Refused; 165's own take-over then closes it."""
    settings = bus.settings
    person = {"pseudonym": uuid.uuid4().hex * 2, "occurred_at": dt.datetime.now(dt.UTC)}
    event = records.handover("municipality", to="165", age=15, **person)  # from 153 Brøndby
    produce(settings, [(settings.topics.inbound_events, "handover", event)])
    event_id = event["envelope"]["event_id"]
    bus.reader.wait_for(lambda _: _of(bus, "routed_task", event_id=event_id), what="the task")
    (task,) = _of(bus, "routed_task", event_id=event_id)
    assert task.topic == settings.topics.tasks("165", "family_services")
    take_over = {
        "task_id": task.record["task_id"],
        "event_id": event_id,
        "unit": "family_services",
        "kommunekode": "165",
        "subject_pseudonym": person["pseudonym"],
        "taken_over_by": "cw-of-glostrup",
        "taken_over_at": dt.datetime.now(dt.UTC),
        "note": None,
        "sealed_note": None,
    }
    produce_ack(settings, "161", take_over)
    bus.reader.wait_for(
        lambda _: _rejections(bus, task.record["task_id"]), what="the foreign take-over rejected"
    )
    (letter,) = [
        s.record
        for s in _of(bus, "dead_letter", component="tracker")
        if task.record["task_id"] in s.record["reason"]
    ]
    assert letter["source_topic"] == settings.topics.task_acks_of("161")
    assert letter["reason"] == (
        f"rejected take-over of task {task.record['task_id']}: it belongs to municipality 165, "
        f"the take-over came on the take-over topic of municipality 161 "
        f"({settings.topics.task_acks_of('161')}); not applied"
    )
    assert person["pseudonym"] not in letter["reason"]

    # Still open: 165's own take-over closes it, and the sender hears who took over.
    produce_ack(settings, "165", {**take_over, "taken_over_by": "cw-of-albertslund"})
    bus.reader.wait_for(
        lambda _: _of(bus, "handover_status", event_id=event_id, status="taken_over"),
        what="word to the sender that 165 took over",
    )
    (taken,) = _of(bus, "handover_status", event_id=event_id, status="taken_over")
    assert taken.topic == settings.topics.handovers("153")
    assert taken.record["taken_over_by"] == "cw-of-albertslund"
    assert len(_rejections(bus, task.record["task_id"])) == 1


def _rejections(bus: Bus, task_id: str) -> list[str]:
    return [
        s.record["reason"]
        for s in _of(bus, "dead_letter")
        if s.record["component"] == "tracker" and task_id in s.record["reason"]
    ]


def produce_ack(settings: Settings, kommunekode: str, record: dict[str, Any]) -> None:
    """A take-over on ``kommunekode``'s take-over topic, as its inbox would write it."""
    from confluent_kafka import Producer

    producer = Producer(settings.producer_config())
    producer.produce(
        settings.topics.task_acks_of(kommunekode),
        key=record["subject_pseudonym"].encode(),
        value=schemas.encode("task_taken_over", record),
    )
    assert producer.flush(30) == 0
