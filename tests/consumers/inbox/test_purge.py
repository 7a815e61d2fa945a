"""Closed tasks purged after their retention (the table's class ``tasks``), on SQLite and
PostgreSQL: the rows go with their details, note and escalations, open tasks stay however old,
and on SQLite the deleted bytes are in neither the database file nor its write-ahead log."""

from __future__ import annotations

import datetime as dt
import sqlite3
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from bus.cli import cli
from bus.retention import DEFAULT_RETENTION, RetentionError, load_retention, parse_table
from bus.waiting import wait_until
from consumers.inbox.feed import utc_now
from consumers.inbox.migrate import migrate
from consumers.inbox.purge import purge_closed
from consumers.inbox.store import TaskStore, connect
from consumers.inbox.tasks import Basis, Escalation, TakeOver, Task
from tests.support.harness import running, settings_env
from tests.support.inbox_harness import inbox_settings

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
KEPT = load_retention().data_class("tasks").period
assert KEPT is not None
# Synthetic personal data: what must be gone from disk once its task is purged.
PURGED_NAME = "Synthetica Purgesen"
PURGED_NOTE = "met Synthetica at the school"


def task(task_id: str, routed_at: dt.datetime, name: str = "Synthetic Keptsen") -> Task:
    return Task(
        task_id=task_id,
        event_id=f"event-{task_id}",
        event_type="dk.ungebus.dropout_notice.v1",
        kommunekode="161",
        unit="youth_unit",
        basis=Basis("statute", "kui_12c", "KUI § 12 c"),
        consent_id=None,
        due_by=routed_at + 5 * DAY,
        priority="high",
        policy_version="1",
        subject_pseudonym="ab" * 32,
        details={"name": name, "status": "dropped_out"},
        routed_at=routed_at,
        traceparent=None,
    )


def escalation(task_id: str, at: dt.datetime) -> Escalation:
    return Escalation(
        task_id=task_id, event_id=f"event-{task_id}", event_type="dk.ungebus.dropout_notice.v1",
        kommunekode="161", unit="youth_unit", subject_pseudonym="ab" * 32, due_by=at,
        escalated_at=at + DAY, escalated_to="unit_lead", level=1, reason="late",
    )  # fmt: skip


def stored(store: TaskStore, now: dt.datetime) -> dict[str, str]:
    """Four tasks: closed past retention, closed just inside it, open and very old, recent."""
    long_ago = now - KEPT - 30 * DAY
    store.save(
        [
            task("closed-long-ago", long_ago, PURGED_NAME),
            task("closed-lately", long_ago),
            task("open-long-ago", long_ago),
            task("open", now - DAY),
        ],
        [escalation("closed-long-ago", long_ago), escalation("open-long-ago", long_ago)],
        long_ago,
    )
    store.mark_taken_over("closed-long-ago", TakeOver("yu-1", now - KEPT - DAY, PURGED_NOTE))
    store.mark_taken_over("closed-lately", TakeOver("yu-1", now - KEPT + DAY, None))
    return {"purged": "closed-long-ago"}


def ids(store: TaskStore) -> set[str]:
    kept = store.open_tasks("161", "youth_unit") + store.recently_taken_over("161", "youth_unit")
    return {t.task.task_id for t in kept}


def test_closed_tasks_past_their_retention_go_with_their_escalations(store: TaskStore) -> None:
    stored(store, NOW)
    purge = purge_closed(store.engine, load_retention(), NOW)
    assert (purge.tasks, purge.escalations) == (1, 1)
    assert purge.closed_before == NOW - KEPT
    assert ids(store) == {"closed-lately", "open-long-ago", "open"}
    assert store.task_by_id("closed-long-ago") is None
    assert [e.task_id for e in store.escalations("161", "youth_unit")] == ["open-long-ago"]
    assert "deleted 1 closed task(s) taken over before" in str(purge)
    again = purge_closed(store.engine, load_retention(), NOW)
    assert (again.tasks, again.escalations) == (0, 0)  # nothing left to purge


def test_an_escalation_whose_task_never_came_goes_after_its_own_retention(
    store: TaskStore,
) -> None:
    stored(store, NOW)
    kept_for = load_retention().data_class("escalations").period
    assert kept_for is not None
    store.save([], [escalation("lost-old", NOW - kept_for - 2 * DAY)], NOW)
    store.save([], [escalation("lost-lately", NOW - kept_for)], NOW)  # escalated a day later
    purge = purge_closed(store.engine, load_retention(), NOW)
    assert purge.escalations == 2  # the closed task's, and the old one without a task
    left = {e.task_id for e in store.escalations("161", "youth_unit")}
    assert left == {"open-long-ago", "lost-lately"}


def test_a_dry_run_counts_and_deletes_nothing(store: TaskStore) -> None:
    stored(store, NOW)
    purge = purge_closed(store.engine, load_retention(), NOW, dry_run=True)
    assert (purge.tasks, purge.escalations, purge.dry_run) == (1, 1, True)
    assert "would delete 1 closed task(s)" in str(purge)
    assert ids(store) == {"closed-long-ago", "closed-lately", "open-long-ago", "open"}


def test_a_shorter_retention_in_the_table_purges_sooner(store: TaskStore) -> None:
    stored(store, NOW)
    document = tomllib.loads(DEFAULT_RETENTION.read_text(encoding="utf-8"))
    for entry in document["class"]:
        if entry["name"] == "tasks":
            entry["retention"] = f"P{KEPT.days - 10}D"
    purge = purge_closed(store.engine, parse_table(document), NOW)
    assert purge.tasks == 2  # the one closed lately is past a retention 10 days shorter
    assert ids(store) == {"open-long-ago", "open"}


def test_tasks_kept_until_erased_is_refused() -> None:
    document = tomllib.loads(DEFAULT_RETENTION.read_text(encoding="utf-8"))
    for entry in document["class"]:
        if entry["name"] == "tasks":
            entry["retention"] = "until erased"
    with pytest.raises(RetentionError, match="'tasks' is kept until erased: the inbox purges"):
        purge_closed(connect("sqlite://"), parse_table(document), NOW)


def _on_disk(database: Path) -> bytes:
    """Every byte SQLite keeps for the inbox: the database file, its WAL, its shared memory."""
    files = [database, *database.parent.glob(database.name + "-*")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def test_on_sqlite_a_purged_tasks_bytes_are_overwritten_on_disk(tmp_path: Path) -> None:
    database = tmp_path / "inbox.db"
    engine = connect(f"sqlite:///{database}")
    migrate(engine)
    store = TaskStore(engine)
    stored(store, NOW)
    with engine.connect() as connection:  # a reader open, as the web app's pool keeps one
        assert connection.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    before = _on_disk(database)
    assert PURGED_NAME.encode() in before and PURGED_NOTE.encode() in before

    purge = purge_closed(engine, load_retention(), NOW)
    assert purge.tasks == 1 and purge.checkpointed is True
    after = _on_disk(database)
    assert PURGED_NAME.encode() not in after and PURGED_NOTE.encode() not in after
    assert b"Synthetic Keptsen" in after  # the kept tasks are still there
    engine.dispose()
    with sqlite3.connect(database) as plain:  # still a sound database
        assert plain.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_an_operator_purges_with_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNGEBUS_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("UNGEBUS_INBOX_DATABASE_URL", raising=False)
    engine = connect(f"sqlite:///{tmp_path / 'inbox.db'}")
    migrate(engine)
    stored(TaskStore(engine), utc_now())

    dry = CliRunner().invoke(cli, ["inbox", "purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would delete 1 closed task(s) taken over before" in dry.output
    assert f"class 'tasks': kept P{KEPT.days}D after the take-over" in dry.output
    assert TaskStore(engine).task_by_id("closed-long-ago") is not None

    real = CliRunner().invoke(cli, ["inbox", "purge"])
    assert real.exit_code == 0, real.output
    assert "deleted 1 closed task(s)" in real.output
    assert TaskStore(engine).task_by_id("closed-long-ago") is None
    assert TaskStore(engine).task_by_id("closed-lately") is not None
    engine.dispose()


@pytest.mark.integration
def test_the_running_inbox_purges_at_start_and_says_so(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    """`ungebus inbox` as a municipality runs it: its first purge runs as it starts, the next
    every UNGEBUS_INBOX_PURGE_INTERVAL_S; the log names counts and the class, never a person."""
    settings = inbox_settings(kafka_bootstrap, unique, tmp_path)
    engine = connect(settings.database_url)
    migrate(engine)
    store = TaskStore(engine)
    stored(store, utc_now())
    env = settings_env(settings, UNGEBUS_INBOX_PORT="0", UNGEBUS_INBOX_UNITS="youth_unit")
    log = tmp_path / "inbox.log"
    with running(["inbox"], env, log):
        wait_until(lambda: store.task_by_id("closed-long-ago") is None, 60, "the purge")
        wait_until(lambda: "Purge: deleted 1 closed task(s)" in log.read_text(), 10, "its log")
    assert store.task_by_id("closed-lately") is not None
    assert store.task_by_id("open-long-ago") is not None
    assert PURGED_NAME not in log.read_text() and "ab" * 32 not in log.read_text()
    engine.dispose()
