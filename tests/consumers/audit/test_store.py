"""The audit store on SQLite: migrated by Alembic, each decision once, one person's in order."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import schemas
from consumers.audit.decisions import AuditedDecision
from consumers.audit.migrate import VERSION_TABLE, migrate
from consumers.audit.query import render
from consumers.audit.records import Rejected, decision_of, read
from consumers.audit.store import AuditStore, connect, metadata
from schemas.synthetic import synthetic_cpr
from streams.routing import outputs
from streams.routing.consent import ConsentState
from streams.routing.decide import InboundEvent, decide
from streams.routing.policy import load_policy
from tests.support import records
from tests.support.audit_decisions import NOW, decision, person

POLICY = load_policy()

# Also on PostgreSQL: the session's own server (tests/conftest.py), a database per test; or
# where one is given, UNGEBUS_TEST_POSTGRES_URL=postgresql+psycopg://audit@127.0.0.1:5432/audit_test
ON_BOTH = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


@pytest.fixture(params=ON_BOTH)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditStore]:
    if request.param == "sqlite":
        engine = connect(f"sqlite:///{tmp_path / 'audit.db'}")
    else:
        engine = connect(request.getfixturevalue("postgres_url"))  # an empty database
    migrate(engine)
    migrate(engine)  # idempotent
    yield AuditStore(engine)
    engine.dispose()


def test_the_migrated_schema_matches_the_table(store: AuditStore) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []


def test_a_decision_stored_twice_is_kept_once(store: AuditStore) -> None:
    someone = person()
    first = decision(someone, "e1")
    replayed = decision(someone, "e1", decided_at=NOW + dt.timedelta(minutes=2))  # a restart
    assert first.decision_id == replayed.decision_id
    assert store.save([first, replayed], stored_at=NOW) == {first.decision_id}
    assert store.save([replayed], stored_at=NOW) == set()
    assert store.decisions_about(someone) == [first]  # the first one written stays


def test_one_persons_decisions_oldest_first_and_no_one_elses(store: AuditStore) -> None:
    someone, other = person(), person()
    later = decision(someone, "e2", NOW + dt.timedelta(hours=1))
    earlier = decision(someone, "e1", NOW)
    # The same event routed again under the same policy, to another unit: another decision.
    consented = decision(someone, "e1", NOW + dt.timedelta(hours=2), task_ids=("t2",))
    store.save([later, decision(other, "e3")], stored_at=NOW)
    store.save([consented, earlier], stored_at=NOW)
    assert [d.event_id for d in store.decisions_about(someone)] == ["e1", "e2", "e1"]
    assert store.decisions_about(someone) == [earlier, later, consented]
    assert [d.event_id for d in store.decisions_about(other)] == ["e3"]
    assert store.decisions_about(person()) == []
    found = store.decisions_about(someone)[0]
    assert found.decided_at.tzinfo == dt.UTC and found.routes == earlier.routes


def test_decisions_of_the_same_millisecond_keep_their_order_on_the_topic(
    store: AuditStore,
) -> None:
    someone = person()
    # A consent released two held events in one go: one ``now`` for both.
    written = [replace(decision(someone, event_id), offset=offset)
               for event_id, offset in (("zz", 7), ("aa", 8), ("mm", 9))]  # fmt: skip
    store.save(list(reversed(written)), stored_at=NOW)
    assert [d.event_id for d in store.decisions_about(someone)] == ["zz", "aa", "mm"]


def test_a_large_batch_is_stored_in_one_call(store: AuditStore) -> None:
    someone = person()
    many = [decision(someone, f"e{i}", NOW + dt.timedelta(seconds=i)) for i in range(2500)]
    assert len(store.save(many, stored_at=NOW)) == 2500
    assert len(store.decisions_about(someone)) == 2500


def test_a_routers_audit_record_round_trips_and_renders_as_before(store: AuditStore) -> None:
    record = records.release_planning("prison", age=22, residence="167")
    event = InboundEvent("release_planning", record)
    made = decide(event, ConsentState(), POLICY, NOW)
    out = outputs.audit(
        "audit.routing", event, made.outcome, made.routes, made.reason, made, POLICY, NOW, None
    )
    read_back = read(out.value)
    assert isinstance(read_back, AuditedDecision)
    assert read_back.decision_id == out.header("ce_id")
    store.save([read_back], stored_at=NOW)
    (stored,) = store.decisions_about(event.pseudonym)
    assert out.value is not None
    assert render(stored) == _render_as_before(schemas.decode(out.value).record)
    assert render(stored).startswith(
        f"{NOW.isoformat(timespec='seconds')}  dk.ungebus.release_planning.v1  "
        f"{event.event_id}  ROUTED\n    jobcentre@167 on "
    )


def _render_as_before(record: dict[str, Any]) -> str:
    """``streams.audit_query.render`` as it was, from the Avro record (the format is kept)."""
    routes = ", ".join(
        f"{r['unit']}@{r['kommunekode']} on {r['basis']['id']} ({r['basis']['citation']})"
        + (f" with consent {r['consent_id']}" if r["consent_id"] else "")
        + f" saw {len(r['fields'])} fields"
        for r in record["routes"]
    )
    when = record["decided_at"].isoformat(timespec="seconds")
    head = f"{when}  {record['event_type']}  {record['event_id']}  {record['decision'].upper()}"
    return f"{head}\n    {routes or record['reason']}"


def test_records_the_store_cannot_use_are_rejected_with_a_reason() -> None:
    letter = {
        "reason": "r", "error_type": "e", "component": "c", "event_id": None,
        "source_topic": "t", "source_partition": 0, "source_offset": 1, "original_key": None,
        "original_value": None, "original_headers": [], "failed_at": NOW,
        "original_value_sha256": None, "original_value_size": None,
    }  # fmt: skip
    cpr = synthetic_cpr(random.Random(1), dt.date(2005, 3, 14))
    held = decision(person(), "e1", outcome="held", task_ids=())
    as_record = {
        "event_id": "e1", "event_type": held.event_type, "decision": "held", "routes": [],
        "reason": "waiting", "policy_version": "1", "decided_at": NOW, "held_until": NOW,
        "subject_pseudonym": cpr, "holds": [], "expired": [],
    }  # fmt: skip
    cases = {
        None: "decode:no_value",
        b"\x00\x00\x00\x04\x4d" + b"\xff" * 40: "decode:",
        schemas.encode("dead_letter", letter): "validate:unexpected_schema",
        schemas.encode("routing_decision", as_record): "validate:not_a_pseudonym",
    }
    for value, error_type in cases.items():
        rejected = read(value)
        assert isinstance(rejected, Rejected), error_type
        assert rejected.error_type.startswith(error_type)
        assert cpr not in rejected.reason
    fine = {**as_record, "subject_pseudonym": held.subject_pseudonym}
    assert read(schemas.encode("routing_decision", fine)) == decision_of(fine)


def test_a_decision_written_as_version_1_or_2_is_one_decision(store: AuditStore) -> None:
    """Records written before routing_decision v2 are read, stored and found as before, and
    the same decision written in both versions is kept once (its id ignores v2's fields)."""
    event = InboundEvent("dropout_notice", records.dropout_notice(age=17, residence="161"))
    made = decide(event, ConsentState(), POLICY, NOW)
    assert made.routes
    out = outputs.audit(
        "audit.routing", event, made.outcome, made.routes, made.reason, made, POLICY, NOW, None
    )
    assert out.value is not None
    as_v1 = schemas.decode(out.value, version=1).record
    v1, v2 = read(schemas.encode_version("routing_decision", 1, as_v1)), read(out.value)
    assert isinstance(v1, AuditedDecision) and isinstance(v2, AuditedDecision)
    assert v1.decision_id == v2.decision_id
    assert [r["rule_id"] for r in v1.routes] == [None] * len(made.routes)
    assert [r["rule_id"] for r in v2.routes] == [r.rule_id for r in made.routes]
    assert replace(v1, routes=()) == replace(v2, routes=())
    assert store.save([v1, v2], stored_at=NOW) == {v1.decision_id}
    (stored,) = store.decisions_about(event.pseudonym)
    assert render(stored) == render(v2)
