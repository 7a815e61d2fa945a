"""An erasure (``ungebus erase`` writes it on ``erasures``) reaches the inbox on the real
broker: the person's tasks and escalations are deleted and gone from the database's files,
their earlier tasks stay out when delivered again, and everyone else's tasks stay."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import make_url

from bus.erasure.fact import Erasure
from bus.erasure.record import erasure_record
from bus.erasure.scan import needles, scan
from consumers.inbox.service import Inbox
from consumers.inbox.settings import InboxSettings
from tests.support.inbox_harness import (
    escalation,
    inbox_settings,
    person,
    publish,
    publish_raw,
    publish_task,
    routed_task,
    task_rows,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path) -> InboxSettings:
    return inbox_settings(kafka_bootstrap, unique, tmp_path)


def drain(inbox: Inbox, until: Callable[[], bool], what: str) -> None:
    wait_until(lambda: inbox.feed.poll_once(timeout_s=0.2) >= 0 and until(), what)


def test_an_erased_persons_tasks_are_deleted_from_the_inbox_and_its_files(
    settings: InboxSettings,
) -> None:
    freja, bo = person(1, "Freja Erasetest"), person(2, "Bo Keeptest")
    hers, his = routed_task(freja), routed_task(bo)
    database = Path(str(make_url(settings.database_url).database))
    inbox = Inbox.open(settings)
    try:
        publish_task(settings, hers)
        publish_task(settings, his)
        publish(settings, settings.topics.escalations("161", "youth_unit"), "task_escalated",
                escalation(hers))  # fmt: skip
        drain(inbox, lambda: task_rows(settings).keys() == {hers["task_id"], his["task_id"]},
              "both tasks stored")  # fmt: skip
        wanted = needles(freja.cpr, [freja.name])
        assert scan([database.parent], wanted).hits, "the test's data is not in the files"

        erased_at = dt.datetime.now(dt.UTC)
        erasure = Erasure(freja.pseudonym, erased_at, "request 17", "admin", "dpo@host", 1)
        out = erasure_record(settings.topics.erasures, erasure)
        publish_raw(settings, out.topic, out.value, out.key, None)
        drain(inbox, lambda: hers["task_id"] not in task_rows(settings), "her task deleted")

        assert task_rows(settings) == {his["task_id"]: 1}
        assert inbox.store.escalations("161", "youth_unit") == []
        assert scan([database.parent], wanted).hits == []  # nor in the WAL, nor in free pages

        # Her task delivered again (the router's retry) stays out; a task routed after the
        # erasure (a new event about her) is stored.
        later = routed_task(freja, disclose_identity=False)
        later["routed_at"] = erased_at + dt.timedelta(seconds=1)
        publish_task(settings, hers)
        publish_task(settings, later)
        drain(inbox, lambda: later["task_id"] in task_rows(settings), "the later task")
        assert task_rows(settings) == {his["task_id"]: 1, later["task_id"]: 1}
    finally:
        inbox.close()
