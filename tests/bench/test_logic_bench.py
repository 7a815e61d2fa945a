"""The bench's ceiling for one router process (``logic_rate``) measures routing, not rejects."""

from __future__ import annotations

from typing import Any

import pytest

from bench import logic_bench, router_load
from bus.settings import Settings

SETTINGS = Settings(topic_prefix="ceiling.")


def test_the_bench_events_are_routed_and_counted() -> None:
    events = router_load.synthetic_events(8)

    assert logic_bench.logic_rate(SETTINGS, events, seconds=0.01) > 0


def test_a_record_the_router_would_dead_letter_stops_the_measure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_wire = logic_bench.wire

    def one_corrupted(
        settings: Settings, events: list[tuple[str, dict[str, Any]]]
    ) -> list[tuple[str, bytes, bytes]]:
        wire = real_wire(settings, events)
        topic, key, _value = wire[0]
        return [(topic, key, b"\x00not avro"), *wire[1:]]

    monkeypatch.setattr(logic_bench, "wire", one_corrupted)

    with pytest.raises(ValueError, match="1 of 8 bench events were not routable"):
        logic_bench.logic_rate(SETTINGS, router_load.synthetic_events(8), seconds=0.01)


def test_an_event_from_an_unknown_sender_stops_the_measure() -> None:
    events = router_load.synthetic_events(8)
    name, record = events[0]
    envelope = {**record["envelope"], "source": {"kind": "institution", "id": "000000"}}
    forged = [(name, {**record, "envelope": envelope}), *events[1:]]

    with pytest.raises(ValueError, match="1 of 8 bench events have unknown senders"):
        logic_bench.logic_rate(SETTINGS, forged, seconds=0.01)
