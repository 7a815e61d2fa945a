"""Hostile records on the router's input are dead-lettered with their reason, and never stop it.

A fresh bus, the router as a process under the supervisor (as ``ungebus run`` runs it). Between
valid events, every hostile shape we could think of: a tombstone, bytes that are no record, a
wrong magic byte or schema id, truncated Avro, absurd array and map counts, a record of another
kind, a wrong key, a ~1 MB payload behind a valid header (over the producer's limit, so its
dead letter keeps it by reference), records whose outputs or state would be too large, and
maximal headers. Each hostile record gives one dead letter whose reason names what was wrong;
every valid event is routed to its task topic; the router process is the same throughout.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import schemas
from bus.processes import ComponentSpec, Supervisor
from bus.settings import PROJECT_ROOT
from streams.routing.consent import ConsentState
from streams.routing.decide import InboundEvent, decide
from streams.routing.policy import load_policy
from tests.support import records
from tests.support.harness import Reader, fresh_bus, publish_to_router, settings_env

pytestmark = pytest.mark.integration

KIND = "dropout_notice"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
Headers = list[tuple[str | bytes, bytes]]


@dataclass(frozen=True)
class Shape:
    """One record to publish; ``error_type`` None: a valid event that must be routed."""

    name: str
    kind: str
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)
    error_type: str | None = None
    reason: tuple[str, ...] = ()  # phrases the dead letter's reason must contain
    copied: bool = True  # the dead letter holds the original bytes


def _pseudonym() -> str:
    return uuid.uuid4().hex * 2


def _event(now: dt.datetime, **changes: Any) -> dict[str, Any]:
    event_id = changes.pop("event_id", None)
    record = records.dropout_notice(
        age=16, residence="161", occurred_at=now, pseudonym=_pseudonym(), event_id=event_id
    )
    return {**record, **changes}


def _valid(now: dt.datetime, name: str, headers: Headers | None = None) -> Shape:
    record = _event(now)
    pseudonym = record["envelope"]["subject"]["pseudonym"]
    found: Headers = [*schemas.cloudevent_headers(record), *(headers or [])]
    return Shape(name, KIND, pseudonym.encode(), schemas.encode(KIND, record), found)


def _decode_reason(value: bytes) -> str:
    try:
        schemas.decode(value)
    except schemas.DecodeError as exc:
        return exc.reason
    raise AssertionError("this shape decodes")


def _zigzag(value: int) -> bytes:
    value = (value << 1) ^ (value >> 63)
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hostile_shapes(now: dt.datetime) -> list[Shape]:
    record = _event(now, institution_name="ZZZZZZZZZZ")
    key = record["envelope"]["subject"]["pseudonym"].encode()
    wire = schemas.encode(KIND, record)
    letter_v1 = schemas.encode_version(
        "dead_letter", 1,
        {"reason": "r", "error_type": "e", "component": "c", "event_id": None,
         "source_topic": "t", "source_partition": 0, "source_offset": 0, "original_key": None,
         "original_value": None, "original_headers": [], "failed_at": EPOCH},
    )  # fmt: skip
    task = schemas.encode(
        "routed_task",
        {"task_id": "t", "event_id": "e", "event_type": "dk.ungebus.dropout_notice.v1",
         "unit": "youth_unit", "kommunekode": "161",
         "basis": {"kind": "statute", "id": "kui_12c", "citation": "KUI § 12 c"},
         "consent_id": None, "due_by": now, "priority": "high", "policy_version": "1",
         "subject_pseudonym": key.decode(), "details": {}, "sealed_details": None,
         "routed_at": EPOCH},
    )  # fmt: skip
    endless_array = letter_v1[:-2] + _zigzag(2**62) + b"\x00"  # the headers' count, failed_at 0
    # the details map's count, then sealed_details null (branch 0) and routed_at 0
    endless_map = task[:-3] + _zigzag(2**40) + b"\x00\x00"
    bad_utf8 = wire.replace(b"ZZZZZZZZZZ", b"\xff" * 10)
    header = wire[:5]
    huge_random = header + os.urandom(1_040_000)  # over librdkafka's message.max.bytes
    big_random = header + os.urandom(900_000)  # under the codec's limit: its copy is kept
    long_id = _event(now, event_id="e" * 600_000)
    long_id_key = long_id["envelope"]["subject"]["pseudonym"].encode()
    adult = records.handover(
        "municipality", to="161", age=20, pseudonym=_pseudonym(), occurred_at=now
    )
    adult["case_reference"] = "x" * 760_000  # held for consent: over a table entry's limit
    adult_key = adult["envelope"]["subject"]["pseudonym"].encode()
    return [
        Shape("tombstone", KIND, key, None, error_type="Rejected", reason=("a tombstone",)),
        Shape("empty value", KIND, key, b"", error_type="DecodeError",
              reason=("shorter than the header",)),
        Shape("wrong magic byte", KIND, key, b"\x07" + wire[1:], error_type="DecodeError",
              reason=("magic byte is 7, expected 0",)),
        Shape("unknown schema id", KIND, key, b"\x00" + (4242).to_bytes(4, "big") + wire[5:],
              error_type="DecodeError", reason=("schema id 4242 is not in the catalogue",)),
        Shape("truncated Avro", KIND, key, wire[: len(wire) // 2], error_type="DecodeError",
              reason=(_decode_reason(wire[: len(wire) // 2]), "only")),
        Shape("trailing bytes", KIND, key, wire + b"junk", error_type="DecodeError",
              reason=("4 bytes left after the record",)),
        Shape("huge array count", KIND, key, endless_array, error_type="DecodeError",
              reason=("array claims 4611686018427387904 items, over the limit of 10000",)),
        Shape("huge map count", KIND, key, endless_map, error_type="DecodeError",
              reason=("map claims 1099511627776 items",)),
        Shape("invalid UTF-8", KIND, key, bad_utf8, error_type="DecodeError",
              reason=("UnicodeDecodeError",)),
        Shape("a dead letter on the inbound topic", KIND, key, letter_v1, error_type="Rejected",
              reason=("a dead_letter record does not belong on",)),
        Shape("a routed task on the inbound topic", KIND, key, task, error_type="Rejected",
              reason=("a routed_task record does not belong on",)),
        Shape("wrong key", KIND, b"somebody-else", wire, error_type="Rejected",
              reason=("the record key is not the subject pseudonym",)),
        Shape("a 1 MB key", KIND, b"k" * 1_000_000, wire, error_type="Rejected",
              reason=("the record key is not the subject pseudonym", "too large to copy"),
              copied=False),
        Shape("a valid header, then ~1 MB of random bytes", KIND, key, huge_random,
              error_type="DecodeError",
              reason=("payload is 1040005 bytes, over the 921600 limit",
                      "too large to copy into a dead letter: value 1,040,005 bytes, SHA-256 "
                      + hashlib.sha256(huge_random).hexdigest(),
                      "it stays at"),
              copied=False),
        Shape("a valid header, then 900 KB of random bytes", KIND, key, big_random,
              error_type="DecodeError", reason=(_decode_reason(big_random),)),
        Shape("an event id of 600 KB", KIND, long_id_key, schemas.encode(KIND, long_id),
              error_type="TooLarge",
              reason=("its outputs are too large to write",)),
        Shape("an event too large to hold for consent", "handover", adult_key,
              schemas.encode("handover", adult), error_type="TooLarge",
              reason=("it cannot be kept: the state it leaves for one person would be",
                      "a changelog record may hold")),
    ]  # fmt: skip


def _expected_tasks(shapes: list[Shape], now: dt.datetime) -> set[str]:
    policy = load_policy()
    expected = set()
    for shape in shapes:
        assert shape.value is not None
        _name, _version, record = schemas.decode(shape.value)
        decision = decide(InboundEvent(KIND, record), ConsentState(), policy, now)
        expected |= {route.task_id for route in decision.routes}
    return expected


def test_hostile_records_are_dead_lettered_and_never_stop_the_router(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = fresh_bus(kafka_bootstrap, "poison", tmp_path)
    now = dt.datetime.now(dt.UTC)
    hostile = hostile_shapes(now)
    big_headers: Headers = [(f"x-padding-{i}", os.urandom(30_000)) for i in range(30)]
    shapes = [_valid(now, "first")]
    for n, shape in enumerate(hostile):
        shapes += [shape, _valid(now, f"after {n}")]
    shapes.append(_valid(now, "maximal valid headers", big_headers))  # ~900 KB of headers
    valid = [s for s in shapes if s.error_type is None]
    expected_tasks = _expected_tasks(valid, now)
    assert len(expected_tasks) == len(valid)

    env = settings_env(settings, UNGEBUS_CONSUMER_SESSION_TIMEOUT_S="6")
    supervisor = Supervisor(tmp_path / "supervised", env, cwd=PROJECT_ROOT)
    spec = ComponentSpec("router", ("streams", "--role", "router", "--loglevel", "info"),
                         lambda _: True)  # fmt: skip
    router = supervisor.start(spec)
    tasks = Reader(settings, settings.topics.all_tasks(), "poison-tasks")
    letters = Reader(settings, [settings.topics.deadletter], "poison-letters")
    try:
        landed = publish_to_router(settings, [(s.kind, s.key, s.value, s.headers) for s in shapes])
        where = {(p.topic, p.partition, p.offset): s for p, s in zip(landed, shapes, strict=True)}

        def routed() -> set[str]:
            return {s.record["task_id"] for s in tasks.seen if s.name == "routed_task"}

        def running(_: object) -> bool:
            dead = supervisor.first_dead()
            assert dead is None, str(dead.failure(dead.how_it_ended())) if dead else ""
            assert supervisor.components == [router], "the router was restarted"
            return True

        tasks.wait_for(
            lambda seen: running(seen) and routed() >= expected_tasks,
            timeout=240, what="every valid event's task",
        )  # fmt: skip
        letters.wait_for(
            lambda seen: running(seen) and len(seen) >= len(hostile),
            timeout=60, what="a dead letter for every hostile record",
        )  # fmt: skip
        running(None)
    finally:
        supervisor.stop_all(20, echo=print)
        tasks.close()
        letters.close()

    assert router.restarts == 0 and router.exited() is not None  # stopped by us, only now
    assert routed() == expected_tasks
    by_shape = {}
    for letter in letters.seen:
        record = letter.record
        shape = where[record["source_topic"], record["source_partition"], record["source_offset"]]
        assert shape.name not in by_shape, f"two dead letters for {shape.name}"
        by_shape[shape.name] = record
    problems = []
    for shape in hostile:
        record = by_shape.get(shape.name)
        if record is None:
            problems.append(f"{shape.name}: no dead letter")
            continue
        if record["error_type"] != shape.error_type:
            problems.append(f"{shape.name}: error type {record['error_type']}")
        missing = [phrase for phrase in shape.reason if phrase not in record["reason"]]
        if missing:
            problems.append(f"{shape.name}: reason {record['reason']!r} lacks {missing}")
        if shape.value is not None:
            digest = hashlib.sha256(shape.value).hexdigest()
            if record["original_value_sha256"] != digest:
                problems.append(f"{shape.name}: digest {record['original_value_sha256']}")
        if record["original_value"] != (shape.value if shape.copied else None):
            problems.append(f"{shape.name}: original value copied: {shape.copied} expected")
    assert not problems, "\n".join(problems)
    assert set(by_shape) == {s.name for s in hostile}
