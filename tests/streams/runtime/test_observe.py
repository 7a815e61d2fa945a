"""The router's spans: a record's outputs stay in its trace; a held event released by a
consent goes on in the held event's own trace, linked to the consent that released it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus import telemetry
from streams.routing.outputs import InMessage, Output
from streams.runtime.observe import Traced
from tests.support.traced import Traced as Telemetry
from tests.support.traced import hex_id

pytestmark = pytest.mark.usefixtures("clean_telemetry")
CONSENT_TRACE = "00-11111111111111111111111111111111-2222222222222222-01"
HELD_TRACE = "00-33333333333333333333333333333333-4444444444444444-01"


def consent_message() -> InMessage:
    return InMessage("consent.events", 0, 7, b"k", b"v", [("traceparent", CONSENT_TRACE.encode())])


def output(topic: str, traceparent: str) -> Output:
    return Output(topic, b"k", b"v", [("traceparent", traceparent.encode())], labels={})


def test_outputs_of_a_record_are_children_of_its_process_span(tmp_path: Path) -> None:
    with Telemetry(tmp_path, "ungebus-router") as traced:
        sent = Traced("ungebus-router", "group").process(
            consent_message(), lambda m: [output("audit.routing", CONSENT_TRACE)]
        )
        spans = {s["name"]: s for s in traced.spans()}
    process, send = spans["process consent.events"], spans["send audit.routing"]
    assert hex_id(process["context"]["trace_id"]) == 0x11111111111111111111111111111111
    assert hex_id(process["parent_id"]) == 0x2222222222222222
    assert send["parent_id"] == process["context"]["span_id"]
    carried = dict(sent[0].headers)["traceparent"].decode()
    assert carried.split("-")[2] == send["context"]["span_id"].removeprefix("0x")


def test_a_released_held_event_stays_in_its_own_trace_linked_to_the_consent(
    tmp_path: Path,
) -> None:
    with Telemetry(tmp_path, "ungebus-router") as traced:
        Traced("ungebus-router", "group").process(
            consent_message(), lambda m: [output("tasks.161.jobcentre", HELD_TRACE)]
        )
        spans = {s["name"]: s for s in traced.spans()}
    process, send = spans["process consent.events"], spans["send tasks.161.jobcentre"]
    assert hex_id(send["context"]["trace_id"]) == 0x33333333333333333333333333333333
    assert hex_id(send["parent_id"]) == 0x4444444444444444
    assert [link["context"]["span_id"] for link in send["links"]] == [process["context"]["span_id"]]


def test_without_recording_the_outputs_keep_the_context_they_were_given() -> None:
    telemetry.shutdown()
    sent = Traced("ungebus-router", "group").process(
        consent_message(), lambda m: [output("tasks.161.jobcentre", HELD_TRACE)]
    )
    assert dict(sent[0].headers)["traceparent"].decode() == HELD_TRACE
