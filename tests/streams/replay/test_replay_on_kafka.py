"""``ungebus replay`` against a real broker, after a real router routed the history.

One router (``ungebus streams``, the shipped policy) serves the module; each test sends its own
young people's events after a moment it replays from, waits until the router has decided them,
and runs the replay as an operator would.
"""

from __future__ import annotations

import csv
import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

import schemas
from bus.acls.matrix import faust_app_id
from bus.confluent_fixes import CommittedOffsets
from bus.sealed_fields import unseal_map
from bus.settings import Settings
from bus.waiting import wait_until
from streams.routing.decide import task_id
from tests.streams.replay.policies import ABSENCE_TO_SSP, PolicyText
from tests.support import records, sealed
from tests.support.harness import fresh_bus, produce, running, settings_env, ungebus

pytestmark = pytest.mark.integration

CPR, NAME = "1403101234", "Test Testesen"  # what tests.support.records puts in every envelope


@pytest.fixture(scope="module")
def bus(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    tmp = tmp_path_factory.mktemp("replay")
    settings = fresh_bus(kafka_bootstrap, "replay", tmp)
    args = ["streams", "--role", "router", "--loglevel", "warn"]  # the tracker writes too
    with running(args, settings_env(settings), tmp / "router.log"):
        yield settings


def _person() -> dict[str, Any]:
    return {"pseudonym": uuid.uuid4().hex * 2, "occurred_at": dt.datetime.now(dt.UTC)}


def _send(settings: Settings, name: str, record: dict[str, Any]) -> str:
    produce(settings, [(settings.topics.inbound_events, name, record)])
    return str(record["envelope"]["event_id"])


def _grant_adult_relocation(settings: Settings, person: dict[str, Any]) -> None:
    envelope = records.envelope(
        "consent_granted", age=20, source_kind="municipality", source_id="161", **person
    )
    record = {
        "envelope": envelope,
        "consent_id": "c-" + uuid.uuid4().hex[:8],
        "purpose": "adult_relocation",
        "recipient_unit": "youth_unit",
        "recipient_kommunekode": "161",
        "given_by": "young_person",
        "valid_until": dt.date.today() + dt.timedelta(days=90),
        "evidence_reference": "doc-1",
    }
    produce(settings, [(settings.topics.inbound_events, "consent_granted", record)])


def _routed(settings: Settings) -> None:
    """Wait until the router has committed every inbound record: its outputs and its state
    are on Kafka then, and it writes nothing more until the next record."""
    inbound = settings.topics.inbound_events
    ends = {p: end for (t, p), end in _end_offsets(settings).items() if t == inbound and end}
    group = faust_app_id(settings.topic_prefix, "router")

    with CommittedOffsets(settings.kafka_config(), group) as offsets:

        def committed() -> bool:
            answer = offsets.read((inbound, p) for p in ends)
            return all(answer.get((inbound, p), -1) >= end for p, end in ends.items())

        wait_until(committed, 60, "the router's commits of every inbound record")


def _end_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    """The end offset of every partition of every topic of this bus (the router's own too)."""
    config = settings.kafka_config()
    topics = AdminClient(config).list_topics(timeout=10).topics
    consumer = Consumer({**config, "group.id": f"offsets-{uuid.uuid4().hex[:8]}"})
    try:
        return {
            (name, p): consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
            for name, meta in topics.items()
            if name.startswith(settings.topic_prefix)
            for p in meta.partitions
        }
    finally:
        consumer.close()


def _everything_on(settings: Settings, topics: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """(topic, decoded record) of every record now on ``topics``, read to their ends."""
    ends = {tp: end for tp, end in _end_offsets(settings).items() if tp[0] in topics and end}
    consumer = Consumer(settings.consumer_config(f"read-{uuid.uuid4().hex[:8]}"))
    consumer.assign([TopicPartition(t, p, 0) for t, p in ends])
    found: list[tuple[str, dict[str, Any]]] = []
    left = dict(ends)
    try:
        while left:
            for message in consumer.consume(500, timeout=1.0):
                if message.error() is not None:
                    continue
                at = (message.topic() or "", message.partition() or 0)
                found.append((at[0], schemas.decode(message.value()).record))
                if (message.offset() or 0) + 1 >= left.get(at, 0):
                    left.pop(at, None)
    finally:
        consumer.close()
    return found


def _no_personal_data(text: str) -> None:
    assert CPR not in text and NAME not in text


def test_preview_reports_exactly_the_candidates_changes_and_writes_nothing(
    bus: Settings, tmp_path: Path
) -> None:
    settings = bus
    _send(settings, "dropout_notice", records.dropout_notice(age=16, **_person()))
    adult = _person()
    _grant_adult_relocation(settings, adult)  # older than the replay: folded all the same
    since = dt.datetime.now(dt.UTC)
    dropouts = [
        _send(settings, "dropout_notice", records.dropout_notice(age=16, **_person()))
        for _ in range(2)
    ]
    prison = _send(
        settings,
        "release_planning",
        records.release_planning("prison", age=22, residence="167", **_person()),
    )
    _send(settings, "school_absence_signal", records.school_absence(18.0, **_person()))
    _send(settings, "handover", records.handover("municipality", to="161", age=20, **adult))
    _routed(settings)

    candidate = tmp_path / "candidate.toml"
    (
        PolicyText()
        .version("candidate-1")
        .with_field("dropout.late_starter", "reason_category")
        .without_rule("prison.youth_unit")
        .write(candidate)
    )
    out = tmp_path / "changes.csv"
    offsets = _end_offsets(settings)
    result = ungebus(
        settings_env(settings), "replay", "--since", since.isoformat(), "--policy",
        str(candidate), "--dry-run", "--csv", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _end_offsets(settings) == offsets, "a dry run wrote to Kafka"

    with out.open(newline="") as rows:
        changes = {
            (r["event_id"], r["change"], r["unit"], r["kommunekode"], r["rule_id"], r["detail"])
            for r in csv.DictReader(rows)
        }
    assert changes == {
        *((d, "field_added", "youth_unit", "161", "dropout.late_starter", "reason_category")
          for d in dropouts),
        (prison, "route_removed", "youth_unit", "167", "prison.youth_unit", ""),
    }  # fmt: skip
    summary = result.stdout
    assert "5 events decided" in summary and "1 consent records folded" in summary
    # The adult's handover rests on the consent given before --since: routed under both.
    assert "outcomes in force:  routed 5, held 0" in summary
    assert "3 events are routed differently" in summary
    assert "youth_unit reason_category (rule dropout.late_starter): 2 events" in summary
    assert "routes removed: 1" in summary
    assert "Dry run: nothing was written to Kafka." in summary
    for text in (summary, result.stderr, out.read_text()):
        _no_personal_data(text)


def test_replay_after_a_new_rule_writes_the_new_tasks_once(bus: Settings, tmp_path: Path) -> None:
    settings = bus
    since = dt.datetime.now(dt.UTC)
    absences = [
        _send(settings, "school_absence_signal", records.school_absence(18.0, **_person()))
        for _ in range(2)
    ]
    dropout = _send(settings, "dropout_notice", records.dropout_notice(age=16, **_person()))
    _routed(settings)

    policy = PolicyText().version("with-ssp").with_rule(ABSENCE_TO_SSP).write(tmp_path / "p.toml")
    env = settings_env(settings)
    args = ("replay", "--since", since.isoformat(), "--policy", str(tmp_path / "p.toml"))
    first = ungebus(env, *args)
    assert first.returncode == 0, first.stderr
    assert "2 new tasks for 2 events written; 3 routes were on their task topics already" in (
        first.stdout
    )
    _no_personal_data(first.stdout + first.stderr)

    ours = {*absences, dropout}
    topics = [*settings.topics.all_tasks(), settings.topics.audit_routing]
    written = _everything_on(settings, topics)
    tasks = [(t, r) for t, r in written if t != settings.topics.audit_routing and
             r["event_id"] in ours]  # fmt: skip
    ids = Counter(r["task_id"] for _t, r in tasks)
    assert [i for i, n in ids.items() if n > 1] == [], "a task id was written twice"
    ssp = [(t, r) for t, r in tasks if r["unit"] == "ssp"]
    assert {r["event_id"] for _t, r in ssp} == set(absences)
    rule = next(r for r in policy.rules if r.id == "absence.ssp")
    for topic, task in ssp:
        assert topic == settings.topics.tasks("161", "ssp")
        assert task["task_id"] == task_id(task["event_id"], "161", "ssp")
        assert task["details"] == {}  # sealed, as the router writes them
        details = unseal_map(sealed.keyring(settings), task["sealed_details"])
        assert set(details) == set(rule.fields)
        assert task["policy_version"] == "with-ssp"
    audits = [r for t, r in written if t == settings.topics.audit_routing and
              r["event_id"] in ours and r["policy_version"] == "with-ssp"]  # fmt: skip
    assert sorted(a["event_id"] for a in audits) == sorted(absences)
    assert all([r["unit"] for r in a["routes"]] == ["ssp"] for a in audits)

    offsets = _end_offsets(settings)
    again = ungebus(env, *args)
    assert again.returncode == 0, again.stderr
    assert "0 new tasks for 0 events written; 5 routes were on their task topics already" in (
        again.stdout
    )
    assert _end_offsets(settings) == offsets
