"""The wire boundary: what the inbox accepts from Kafka, and what it writes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import schemas
from bus.limits import RecordLimits
from bus.records import NotDelivered, Publisher
from consumers.inbox.records import (
    Destination,
    Outgoing,
    Rejected,
    acknowledgement,
    dead_letter,
    header,
    read,
)
from consumers.inbox.tasks import Escalation, TakeOver, Task

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
YOUTH = Destination("tasks", "161", "youth_unit")
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def routed(**overrides: Any) -> dict[str, Any]:
    return {
        "task_id": "t-1",
        "event_id": "e-1",
        "event_type": "dk.ungebus.dropout_notice.v1",
        "unit": "youth_unit",
        "kommunekode": "161",
        "basis": {"kind": "statute", "id": "kui_12c", "citation": "KUI § 12 c"},
        "consent_id": None,
        "due_by": NOW + dt.timedelta(days=5),
        "priority": "high",
        "policy_version": "2026-11-27.1",
        "subject_pseudonym": "ab" * 32,
        "details": {"envelope.subject.cpr": '"1403091234"'},
        "sealed_details": None,
        "routed_at": NOW,
        **overrides,
    }


def test_a_routed_task_for_this_unit_is_read_with_its_trace() -> None:
    task = read(YOUTH, schemas.encode("routed_task", routed()), [("traceparent", TRACE.encode())])
    assert isinstance(task, Task)
    assert (task.task_id, task.unit, task.kommunekode, task.traceparent) == (
        "t-1",
        "youth_unit",
        "161",
        TRACE,
    )
    assert task.due_by == NOW + dt.timedelta(days=5)


def test_undecodable_wrong_schema_and_wrong_recipient_are_rejected() -> None:
    garbage = read(YOUTH, b"\x00\x00\x00\x01junk", None)
    assert isinstance(garbage, Rejected) and garbage.error_type.startswith("decode:")
    assert isinstance(read(YOUTH, None, None), Rejected)

    other_unit = read(YOUTH, schemas.encode("routed_task", routed(unit="jobcentre")), None)
    assert isinstance(other_unit, Rejected)
    assert other_unit.error_type == "validate:wrong_recipient"
    assert other_unit.event_id == "e-1"
    assert "1403091234" not in other_unit.reason

    other_town = read(YOUTH, schemas.encode("routed_task", routed(kommunekode="151")), None)
    assert isinstance(other_town, Rejected)

    escalations = Destination("escalations", "161", "youth_unit")
    wrong_kind = read(escalations, schemas.encode("routed_task", routed()), None)
    assert isinstance(wrong_kind, Rejected)
    assert wrong_kind.error_type == "validate:unexpected_schema"


def test_an_escalation_is_shown_to_the_unit_whose_topic_carried_it() -> None:
    record = {
        "task_id": "t-1",
        "event_id": "e-1",
        "event_type": "dk.ungebus.handover.v1",
        "unit": "youth_unit",
        "kommunekode": "151",
        "subject_pseudonym": "ab" * 32,
        "due_by": NOW,
        "escalated_at": NOW + dt.timedelta(days=2),
        "escalated_to": "sender",
        "level": 1,
        "reason": "not taken over in time",
        "notify_kommunekode": "161",
    }
    found = read(
        Destination("escalations", "161", "youth_unit"),
        schemas.encode("task_escalated", record),
        None,
    )
    assert isinstance(found, Escalation)
    assert (found.kommunekode, found.unit, found.escalated_to) == ("161", "youth_unit", "sender")


def test_acknowledgement_round_trips_and_carries_the_trace_not_the_cpr() -> None:
    task = read(YOUTH, schemas.encode("routed_task", routed()), [("traceparent", TRACE.encode())])
    assert isinstance(task, Task)
    out = acknowledgement("task-acks.161", task, TakeOver("yu-1", NOW, "phoned"))
    name, _, record = schemas.decode(out.value)
    assert name == "task_taken_over"
    assert record["taken_over_by"] == "yu-1" and record["taken_over_at"] == NOW
    assert out.key == task.subject_pseudonym.encode()
    assert header(out.headers, "traceparent") == TRACE
    assert header(out.headers, "ce_type") == "dk.ungebus.task_taken_over.v1"
    assert not any(b"1403091234" in (v if isinstance(v, bytes) else b"") for _, v in out.headers)


def test_dead_letter_keeps_the_original_bytes_and_reason() -> None:
    out = dead_letter(
        "deadletter",
        Rejected("decode:bad_magic_byte", "magic byte is 7"),
        source_topic="tasks.161.youth_unit",
        source_partition=0,
        source_offset=42,
        key=b"k",
        value=b"\x07raw",
        headers=[("traceparent", TRACE.encode())],
        now=NOW,
        limits=RecordLimits(),
    )
    name, _, record = schemas.decode(out.value)
    assert name == "dead_letter"
    assert record["component"] == "inbox"
    assert record["original_value"] == b"\x07raw"
    assert record["source_offset"] == 42
    assert record["original_headers"] == [{"key": "traceparent", "value": TRACE.encode()}]


def test_a_task_with_an_id_longer_than_the_bus_makes_is_rejected() -> None:
    rejected = read(YOUTH, schemas.encode("routed_task", routed(task_id="t" * 300)), None)
    assert rejected == Rejected(
        "validate:id_too_long", "its task_id is longer than 256 characters", "e-1"
    )


def test_a_dead_letter_of_a_record_too_large_to_copy_keeps_it_by_reference() -> None:
    huge = b"\x00" + bytes(1_040_000)
    limits = RecordLimits()
    out = dead_letter(
        "deadletter",
        Rejected("decode:oversized", "payload is 1040001 bytes, over the 921600 limit"),
        source_topic="tasks.161.youth_unit", source_partition=1, source_offset=7,
        key=b"k" * 5000, value=huge, headers=[], now=NOW, limits=limits,
    )  # fmt: skip
    assert limits.too_large(out.topic, out.key, out.value, out.headers) is None
    assert out.key is None  # a key that long is not the letter's key
    record = schemas.decode(out.value, max_size=limits.producer_max_bytes).record
    assert record["original_value"] is None and record["original_value_size"] == len(huge)
    assert "it stays at tasks.161.youth_unit/1/7" in record["reason"]


def test_a_record_kafka_refuses_in_produce_is_not_delivered() -> None:
    publisher = Publisher({"bootstrap.servers": "127.0.0.1:9", "log_level": 0}, timeout_s=5)
    too_large = Outgoing("task-acks.161", b"k", bytes(1_100_000), [])
    with pytest.raises(NotDelivered, match="Kafka refused the record"):
        publisher.publish([too_large])


def test_an_erasure_is_taken_only_when_keyed_by_the_erased_persons_pseudonym() -> None:
    """A record out of place on ``erasures`` must not make the inbox forget anyone."""
    from bus.erasure.fact import Erasure
    from bus.erasure.record import erasure_record
    from consumers.inbox.feed import read_erasure

    her, other = "a" * 64, "b" * 64
    out = erasure_record("erasures", Erasure(her, NOW, "request 17", "admin", "dpo@host", 1))
    assert read_erasure(out.key, out.value, 100_000) == Erasure(
        her, NOW, "request 17", "admin", "dpo@host", 1
    )
    misplaced = read_erasure(other.encode(), out.value, 100_000)
    assert isinstance(misplaced, Rejected)
    assert misplaced.error_type == "validate:not_an_erasure"
    task = schemas.encode("routed_task", routed())
    not_one = read_erasure(her.encode(), task, 100_000)
    assert isinstance(not_one, Rejected)
    assert not_one.error_type == "validate:not_an_erasure"
