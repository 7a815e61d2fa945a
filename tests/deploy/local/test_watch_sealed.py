"""The demo's summary counts sealed inbound records from their clear headers, without keys."""

from __future__ import annotations

import schemas
from deploy.local.summary import Tally
from deploy.local.watch import _from_headers
from tests.support import records


def test_a_sealed_inbound_record_is_counted_from_its_headers() -> None:
    record = records.release_planning("prison")
    found = _from_headers(schemas.cloudevent_headers(record))
    assert found is not None
    name, seen = found
    assert name == "release_planning"
    assert seen["envelope"]["event_id"] == record["envelope"]["event_id"]
    tally = Tally()
    tally.add(name, seen)
    assert tally.accepted["release_planning_prison"] == 1
    assert record["envelope"]["event_id"] in tally.needs_decision


def test_headers_that_do_not_name_an_event_are_not_counted() -> None:
    assert _from_headers([("ce_type", b"something.else")]) is None
