"""Lean spans: what the exporters receive is what the SDK's own spans would give them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from bus import telemetry
from bus.telemetry.lean_spans import LeanSpan, LeanTracer
from bus.telemetry.span_files import json_line

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
LINKED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def pipeline(provider: TracerProvider | None = None) -> tuple[Any, LeanTracer, Any]:
    provider = provider or TracerProvider()
    exported = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exported)
    provider.add_span_processor(processor)
    return exported, LeanTracer("test", provider, processor), provider.get_tracer("test")


def comparable(span: Any) -> dict[str, Any]:
    """The exported JSON line without what differs between any two spans: ids and times."""
    line = json.loads(json_line(span))
    del line["context"]["span_id"], line["start_time"], line["end_time"]
    for event in line["events"]:
        del event["timestamp"]
        event["attributes"].pop("exception.stacktrace", None)  # the lines differ
    return line


def exercise(tracer: Any) -> None:
    """One span through every part of the API the components use."""
    parent = telemetry.context_from_traceparent(PARENT)
    linked = telemetry.span_context_of(telemetry.context_from_traceparent(LINKED))
    assert linked is not None
    span = tracer.start_span(
        "process t.inbound.x",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=[Link(linked, {"why": "released"})],
        attributes={"messaging.system": "kafka", "messaging.destination.partition.id": "2"},
    )
    with trace.use_span(span, end_on_exit=True):
        span.set_attribute(telemetry.EVENT_ID, "e-1")
        span.set_attributes({"n": 3, "ok": True, "ratio": 0.5, "units": ["a", "b"]})
        span.set_attributes({"nothing": None, "nested": {"a": [1]}, "mixed": [1, "a"]})
        span.set_attributes({"": "no key", "object": object})
        span.add_event("held", {"ungebus.unit": "youth_unit"})
        span.update_name("process t.inbound.dropout")
        try:
            raise ValueError("field envelope.event_id: not a UUID")
        except ValueError as exc:
            span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, "ValueError: bad"))
        span.set_status(StatusCode.UNSET)  # ignored, as the SDK does


def test_a_lean_span_exports_exactly_what_the_sdk_span_exports() -> None:
    exported, lean, sdk = pipeline()
    exercise(sdk)
    exercise(lean)
    ours, theirs = exported.get_finished_spans()[1], exported.get_finished_spans()[0]
    assert comparable(ours) == comparable(theirs)
    assert comparable(ours)["attributes"]["units"] == ["a", "b"]
    assert comparable(ours)["attributes"]["nested"] == {"a": [1]}
    assert ours.parent is not None and ours.parent.span_id == 0x00F067AA0BA902B7
    assert ours.end_time is not None and ours.start_time is not None
    assert ours.end_time >= ours.start_time


def test_an_exception_inside_use_span_is_recorded_and_sets_the_status() -> None:
    exported, lean, _sdk = pipeline()
    with pytest.raises(KeyError), trace.use_span(lean.start_span("process t"), end_on_exit=True):
        raise KeyError("unit")
    (span,) = exported.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "KeyError: 'unit'"
    (event,) = span.events
    assert event.name == "exception" and event.attributes["exception.type"] == "KeyError"
    assert "raise KeyError" in event.attributes["exception.stacktrace"]


def test_a_span_ends_once_and_is_frozen_after() -> None:
    exported, lean, _sdk = pipeline()
    span = lean.start_span("send t", kind=SpanKind.PRODUCER)
    assert isinstance(span, LeanSpan) and span.is_recording()
    span.end()
    span.set_attribute("late", "x")
    span.set_status(StatusCode.ERROR)
    span.end()
    (only,) = exported.get_finished_spans()
    assert "late" not in only.attributes and only.status.status_code is StatusCode.UNSET
    assert not span.is_recording()


def test_a_root_span_starts_a_trace_and_a_child_continues_it() -> None:
    exported, lean, sdk = pipeline()
    for context in (None, telemetry.context_from_traceparent(PARENT)):  # the same flags
        ours, theirs = lean.start_span("a", context), sdk.start_span("a", context)
        assert ours.get_span_context().trace_flags == theirs.get_span_context().trace_flags
        ours.end(), theirs.end()
    exported.clear()
    root = lean.start_span("root")
    child = lean.start_span("child", context=trace.set_span_in_context(root))
    child.end()
    root.end()
    first, second = exported.get_finished_spans()
    assert second.parent is None and first.parent == root.get_span_context()
    assert first.context.trace_id == second.context.trace_id
    assert first.context.span_id != second.context.span_id


def test_the_providers_sampler_decides_and_context_still_travels() -> None:
    exported, lean, _sdk = pipeline(TracerProvider(sampler=ALWAYS_OFF))
    span = lean.start_span("process t", context=telemetry.context_from_traceparent(PARENT))
    assert not span.is_recording() and span.get_span_context().is_valid
    assert span.get_span_context().trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    span.end()
    assert exported.get_finished_spans() == ()

    exported, lean, _sdk = pipeline(TracerProvider(sampler=ParentBased(TraceIdRatioBased(0))))
    lean.start_span("a root, never sampled at ratio 0").end()
    lean.start_span("sampled parent", context=telemetry.context_from_traceparent(PARENT)).end()
    assert [s.name for s in exported.get_finished_spans()] == ["sampled parent"]
