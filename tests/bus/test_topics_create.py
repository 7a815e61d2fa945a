"""``ungebus topics create`` (the compose file's ``topics`` service) against a real broker."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka.admin import AdminClient

from bus.cli import cli
from bus.demo_partners import demo_partners
from bus.topics import Topics
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
