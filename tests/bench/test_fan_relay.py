"""R_fan's writes are the router's: its tasks, audit records and changelog records, aimed at
topics of their own, and nothing the router would not write."""

from __future__ import annotations

import pytest

from bench import fan_relay, router_load
from bus.settings import Settings
from bus.topics import SUBJECT_PARTITIONS

SETTINGS = Settings(topic_prefix="fan-test.")
FAN = SETTINGS.model_copy(update={"topic_prefix": "fan-test.fan."})


def test_each_event_gets_the_routers_task_and_audit_records_on_the_fan_topics() -> None:
    records = router_load.wire(SETTINGS, router_load.synthetic_events(40))
    plan = fan_relay.plan(FAN, records)

    assert set(plan.writes) == {value for _topic, _key, value in records}
    tasks = set(FAN.topics.all_tasks())
    for _topic, key, value in records:
        outputs = plan.writes[value]
        audit = [o for o in outputs if o.topic == FAN.topics.audit_routing]
        assert len(audit) == 1 and audit[0].key == key
        assert all(o.key == key for o in outputs if o.topic in tasks)
    assert all(o.topic.startswith(FAN.topic_prefix) for outs in plan.writes.values() for o in outs)
    kinds = plan.by_kind(FAN)
    assert kinds["audit"] == 1.0 and kinds["tasks"] >= 1.0


def test_state_changes_are_written_once_per_person_and_window_to_their_partition() -> None:
    events = router_load.synthetic_events(30)
    records = router_load.wire(SETTINGS, events)
    people = {key for _topic, key, _value in records}
    plan = fan_relay.plan(FAN, records)  # 30 records: one window

    changelog = [o for outs in plan.writes.values() for o in outs if o.topic.endswith("-changelog")]
    seen = [o for o in changelog if o.topic.endswith("-seen-changelog")]
    assert {o.key for o in seen} == people and len(seen) == len(people)
    assert all(o.partition is not None and 0 <= o.partition < SUBJECT_PARTITIONS for o in seen)


def test_a_record_the_router_would_dead_letter_stops_the_measure() -> None:
    records = router_load.wire(SETTINGS, router_load.synthetic_events(5))
    topic, key, _value = records[0]
    broken = [(topic, key, b"\x00not avro"), *records[1:]]

    with pytest.raises(ValueError, match="1 of 5 bench events were not routable"):
        fan_relay.plan(FAN, broken)
