"""The router's outputs over the synthetic generator's events, byte for byte, against a file
recorded before the layout change of issue 16 (``golden/router_outputs.json``).

Every kind of event and consent goes through ``Router.handle`` with a fixed clock and plain
dicts as its tables, a pool of people so that consents meet the events they release, then the
holds run out. Each output (topic, partition, key, value, headers) is hashed in order. A
change to what the router writes fails here; if it is meant, record the file again with
``UNGEBUS_RECORD_GOLDEN=1 pytest tests/streams/routing/test_router_golden.py`` and say why in
the commit.

A decision or task record of a newer compatible schema version is compared as its first
version reads it (Avro schema resolution), so adding a field to ``routing_decision`` or
``routed_task`` keeps the rest byte for byte.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import uuid
from pathlib import Path
from typing import Any

import pydantic

import schemas
from bus.topics import Topics
from schemas.synthetic import DEFAULT_REFERENCE_DATE
from streams.routing.outputs import InMessage, Output
from streams.routing.policy import load_policy
from streams.routing.router import Router, SubjectStore
from streams.runtime.state import StagedTables
from tests.support import records

GOLDEN = Path(__file__).parent / "golden" / "router_outputs.json"
KEY = b"golden-test-pseudonym-key"
TOPICS = Topics("g.")
PEOPLE = 40  # a pool, so a person's consents and events meet
EVENTS = 480


def _inbound(seed: int = 16) -> list[InMessage]:
    batch = schemas.generate_payloads(seed=seed, count=EVENTS, invalid_share=0.0)
    rng = random.Random(seed)
    pool: list[dict[str, Any]] = []
    messages = []
    for i, (kind, payload) in enumerate(_round_robin(batch.payloads)):
        if len(pool) < PEOPLE:
            pool.append(payload["subject"])
        else:
            payload = {**payload, "subject": rng.choice(pool)}
        try:
            model = schemas.parse_partner(kind, payload, today=batch.reference_date)
        except pydantic.ValidationError:  # the borrowed person is out of this kind's ages
            continue
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        name, record = schemas.to_record(model, KEY, event_id)
        key = record["envelope"]["subject"]["pseudonym"].encode()
        value = schemas.encode(name, record)
        headers = schemas.cloudevent_headers(record)
        messages.append(InMessage(TOPICS.inbound_events, 0, i, key, value, headers))
        if i % 37 == 0:  # a retry: the same event again
            messages.append(InMessage(TOPICS.inbound_events, 0, i, key, value, headers))
    return messages


def _round_robin(payloads: dict[str, list[dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for i in range(max(len(p) for p in payloads.values())):
        out += [(kind, items[i]) for kind, items in payloads.items() if i < len(items)]
    return out


def _outputs() -> list[Output]:
    reference = dt.datetime.combine(DEFAULT_REFERENCE_DATE, dt.time(12), tzinfo=dt.UTC)
    now = [reference]
    router = Router(load_policy(), TOPICS, records.senders(), clock=lambda: now[0])
    tables = StagedTables.in_memory(*SubjectStore.TABLES)
    store = SubjectStore(tables)
    written: list[Output] = []
    for message in _inbound():
        written += router.handle(message, store)
        tables.write(tables.seal())
    now[0] = reference + dt.timedelta(days=400)  # every hold has run out
    for pseudonym in sorted({m.key.decode() for m in _inbound()}):
        written += router.expire_holds(pseudonym, store)
        tables.write(tables.seal())
    return written


def _comparable(output: Output) -> bytes | None:
    """An output's value as the golden file knows it: decisions as version 1 reads them.

    Read with the version 1 schema (Avro resolution drops what version 2 added), written
    again as version 1: every field version 1 has must come out byte for byte.
    """
    if output.value is None or not output.topic.startswith(
        (TOPICS.audit_routing, f"{TOPICS.prefix}tasks.")
    ):
        return output.value
    decoded = schemas.decode(output.value, max_size=10_000_000, version=1)
    if decoded.version == 1:
        return output.value
    return schemas.encode_version(decoded.name, 1, decoded.record, max_size=10_000_000)


def _digest(output: Output) -> str:
    h = hashlib.sha256()
    for part in (
        output.topic.encode(),
        str(output.partition).encode(),
        output.key or b"",
        _comparable(output) or b"<tombstone>",
        json.dumps([(k, v.hex()) for k, v in output.headers]).encode(),
    ):
        h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()


def test_the_router_writes_what_it_wrote_before_the_layout_change() -> None:
    written = _outputs()
    observed = {
        "outputs": len(written),
        "per_topic": _count_per_topic(written),
        "digests": [_digest(o) for o in written],
    }
    if os.environ.get("UNGEBUS_RECORD_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(observed, indent=0, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert observed["per_topic"] == golden["per_topic"]
    mismatched = [
        i
        for i, (a, b) in enumerate(zip(observed["digests"], golden["digests"], strict=True))
        if a != b
    ]
    assert mismatched == [], f"outputs {mismatched[:10]} differ (of {len(written)})"


def _count_per_topic(written: list[Output]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for output in written:
        topic = output.topic.removeprefix("g.")
        counts[topic] = counts.get(topic, 0) + 1
    return dict(sorted(counts.items()))
