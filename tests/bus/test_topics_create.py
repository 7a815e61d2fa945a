"""``ungebus topics create`` (the compose file's ``topics`` service) against a real broker."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from bus.cli import cli
from bus.demo_partners import demo_partners
from bus.retention import DAY_MS
from bus.topics import Topics
from bus.waiting import wait_until
from tests.support.kafka_login import client_config

pytestmark = pytest.mark.integration


def test_creates_the_whole_catalogue_and_the_partners_topics_once(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    prefix = f"topics-cli-{uuid.uuid4().hex[:8]}."
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.delenv("UNGEBUS_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("UNGEBUS_TOPIC_PREFIX", prefix)
    topics = Topics(prefix)  # no partners file here: the local run's demo partners
    expected = [*topics.catalogue(), *topics.partner_catalogue(p.name for p in demo_partners())]

    first = CliRunner().invoke(cli, ["topics", "create"])
    assert first.exit_code == 0, first.output
    assert f"{len(expected)} topics created, 0 already there" in first.output

    again = CliRunner().invoke(cli, ["topics", "create"])
    assert again.exit_code == 0, again.output
    assert f"0 topics created, {len(expected)} already there" in again.output

    on_broker = AdminClient(client_config(kafka_bootstrap)).list_topics(timeout=10).topics
    for spec in expected:
        assert len(on_broker[spec.name].partitions) == spec.partitions, spec.name


def test_says_which_kafka_did_not_answer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.delenv("UNGEBUS_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    result = CliRunner().invoke(cli, ["topics", "create"])
    assert result.exit_code == 1
    assert "Kafka at 127.0.0.1:1 did not answer" in result.output


def test_sets_the_retention_table_on_topics_that_keep_records_longer(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A topic created before the table said otherwise keeps its old retention until `topics
    create` sets it; `topics check` lists it and changes nothing."""
    prefix = f"topics-ret-{uuid.uuid4().hex[:8]}."
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.delenv("UNGEBUS_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("UNGEBUS_TOPIC_PREFIX", prefix)
    assert CliRunner().invoke(cli, ["topics", "create"]).exit_code == 0
    admin = AdminClient(client_config(kafka_bootstrap))
    deadletter, tasks = f"{prefix}deadletter", f"{prefix}tasks.161.youth_unit"
    _set_retention(admin, deadletter, str(400 * DAY_MS))  # as if made by an older table
    _set_retention(admin, tasks, "-1")  # as if someone had turned the time limit off

    check = CliRunner().invoke(cli, ["topics", "check"])
    assert check.exit_code == 1, check.output
    assert f"{deadletter}: retention.ms {400 * DAY_MS} (P400D) on the broker, " in check.output
    assert f"{90 * DAY_MS} (P90D) in the retention table" in check.output
    assert f"{tasks}: retention.ms -1 (no time limit) on the broker" in check.output
    assert "2 topic(s) keep records for another time than the retention table" in check.output
    assert _retention(admin, deadletter) == str(400 * DAY_MS)  # check changed nothing

    applied = CliRunner().invoke(cli, ["topics", "create"])
    assert applied.exit_code == 0, applied.output
    assert f"retention set: {deadletter}: retention.ms" in applied.output
    assert "0 topics created" in applied.output and "2 retention(s) set" in applied.output
    assert _retention(admin, deadletter) == str(90 * DAY_MS)
    assert _retention(admin, tasks) == str(365 * DAY_MS)

    again = CliRunner().invoke(cli, ["topics", "check"])
    assert again.exit_code == 0, again.output
    assert "Every topic's retention is the table's" in again.output


def _set_retention(admin: AdminClient, topic: str, value: str) -> None:
    entry = ConfigEntry("retention.ms", value, incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result()
    wait_until(lambda: _retention(admin, topic) == value, 30, f"{topic}'s retention.ms set")


def _retention(admin: AdminClient, topic: str) -> str:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    (future,) = admin.describe_configs([resource]).values()
    return str(future.result()["retention.ms"].value)
