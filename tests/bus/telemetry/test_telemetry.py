"""The telemetry kernel: propagation, the span file ``ungebus trace`` reads, metrics, off switch."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from bus import telemetry
from bus.settings import Settings
from bus.telemetry.trace_cli import load_spans
from tests.support.pii import assert_no_personal_data, personal_data
from tests.support.traced import Traced, metric_value

pytestmark = pytest.mark.usefixtures("clean_telemetry")
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_inject_replaces_the_trace_headers_and_extract_reads_them_back() -> None:
    tracer = telemetry.tracer("test")
    parent = telemetry.context_from_traceparent(TRACEPARENT)
    with tracer.start_as_current_span("send t", context=parent, kind=SpanKind.PRODUCER) as span:
        headers = telemetry.inject(
            [("ce_id", b"1"), ("traceparent", b"old"), ("tracestate", b"x=1")]
        )
        ours = span.get_span_context()
        assert telemetry.traceparent_of_current() == dict(headers)["traceparent"].decode()
    assert [k for k, _ in headers] == ["ce_id", "traceparent"]
    _, trace_id, span_id, _flags = dict(headers)["traceparent"].decode().split("-")
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736" and int(span_id, 16) == ours.span_id

    for carrier in (headers, dict(headers), [(k, v.decode()) for k, v in headers]):
        remote = trace.get_current_span(telemetry.extract(carrier)).get_span_context()
        assert (remote.trace_id, remote.span_id, remote.is_remote) == (
            ours.trace_id,
            ours.span_id,
            True,
        )
    # Outside any span nothing is replaced; garbage gives no parent.
    assert telemetry.inject([("traceparent", b"kept")]) == [("traceparent", b"kept")]
    assert telemetry.span_context_of(telemetry.extract([("traceparent", b"garbage")])) is None
    assert telemetry.span_context_of(telemetry.context_from_traceparent(None)) is None


def test_spans_go_to_a_json_lines_file_that_trace_reads(tmp_path: Path) -> None:
    with Traced(tmp_path, "ungebus-router") as traced:
        tracer = telemetry.tracer("test")
        parent = telemetry.context_from_traceparent(TRACEPARENT)
        attributes = telemetry.messaging_attributes("process", "t.inbound.x", 2, 41)
        with tracer.start_as_current_span(
            "process t.inbound.x", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        ) as span:
            span.set_attribute(telemetry.EVENT_ID, "e-1")
        spans = traced.spans()
    files = list(traced.settings.traces_dir.glob("ungebus-router-*.jsonl"))
    assert len(files) == 1
    (span_json,) = spans
    assert span_json["name"] == "process t.inbound.x"
    assert span_json["kind"] == "SpanKind.CONSUMER"
    assert span_json["parent_id"] == "0x00f067aa0ba902b7"
    assert span_json["context"]["trace_id"] == "0x4bf92f3577b34da6a3ce929d0e0e4736"
    assert span_json["attributes"] == {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": "t.inbound.x",
        "messaging.destination.partition.id": "2",
        "messaging.kafka.offset": 41,
        "ungebus.event_id": "e-1",
    }
    resource = span_json["resource"]["attributes"]
    assert (resource["service.name"], resource["service.namespace"]) == (
        "ungebus-router",
        "ungebus",
    )
    # A line cut short by a process still writing is skipped, the rest still read.
    with files[0].open("a") as out:
        out.write('{"name": "half')
    assert len(load_spans(traced.settings.traces_dir)) == 1


def test_setup_twice_is_the_first_setup(tmp_path: Path) -> None:
    with Traced(tmp_path / "a", "first") as traced:
        telemetry.setup("second", Settings(var_dir=tmp_path / "b"))
        assert telemetry.service_name() == "first"
        with telemetry.tracer("test").start_as_current_span("one"):
            pass
        assert [s["name"] for s in traced.spans()] == ["one"]
    assert not (tmp_path / "b").exists()
    assert telemetry.service_name() is None
    telemetry.shutdown()  # again: harmless


def test_sdk_disabled_records_nothing_and_still_propagates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    settings = Settings(var_dir=tmp_path, metrics_port=0)
    telemetry.setup("ungebus-router", settings)
    assert telemetry.service_name() is None and telemetry.metrics_address() is None
    tracer = telemetry.tracer("test")
    with tracer.start_as_current_span("x", context=telemetry.context_from_traceparent(TRACEPARENT)):
        assert not trace.get_current_span().is_recording()
        continued = telemetry.traceparent_of_current()
    telemetry.meter("test").create_counter("ungebus.test").add(1)
    telemetry.shutdown()
    assert continued is not None and continued.split("-")[1] == TRACEPARENT.split("-")[1]
    assert not settings.traces_dir.exists()


def test_instruments_made_before_setup_count_after_each_setup(tmp_path: Path) -> None:
    counter = telemetry.meter("ungebus.test").create_counter("ungebus.events.accepted")
    assert telemetry.meter("ungebus.test") is telemetry.meter("ungebus.test")
    counter.add(5, {"ungebus.channel": "http"})  # before setup: nowhere
    lags = {("t.tasks", 0): 7, ("t.tasks", 1): 0}
    with Traced(tmp_path) as traced:
        gauge = telemetry.consumer_lag_gauge(telemetry.meter("ungebus.test"), "g1", lambda: lags)
        counter.add(2, {"ungebus.channel": "http", telemetry.EVENT_KIND: "dropout_notice"})
        counter.add(1, {"ungebus.channel": "http", telemetry.EVENT_KIND: "dropout_notice"})
        text = traced.scrape()
        assert metric_value(text, "ungebus_events_accepted_total", ungebus_channel="http") == 3, (
            text
        )
        labels = {
            "messaging_consumer_group_name": "g1",
            "messaging_destination_name": "t.tasks",
        }
        assert (
            metric_value(
                text,
                "ungebus_consumer_lag",
                **labels,
                **{"messaging_destination_partition_id": "0"},
            )
            == 7
        )
        assert metric_value(text, "target_info", service_name="ungebus-test") == 1
    with Traced(tmp_path) as traced:  # a new provider: the same instruments count again
        counter.add(4, {"ungebus.channel": "file"})
        text = traced.scrape()
        assert metric_value(text, "ungebus_events_accepted_total", ungebus_channel="file") == 4
        assert metric_value(text, "ungebus_consumer_lag", messaging_consumer_group_name="g1") == 7
        gauge.close()
        assert metric_value(traced.scrape(), "ungebus_consumer_lag") is None


def test_a_taken_metrics_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings(var_dir=tmp_path, metrics_port=port)
        with pytest.raises(telemetry.TelemetryError, match=f"127.0.0.1:{port}.*METRICS_PORT"):
            telemetry.setup("ungebus-inbox", settings)
    assert telemetry.service_name() is None


def test_messaging_attributes_follow_the_conventions_and_never_carry_the_key() -> None:
    assert telemetry.messaging_attributes("send", "t.acks") == {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": "t.acks",
    }
    got = telemetry.messaging_attributes("process", "t", 0, 0, consumer_group="inbox.161")
    assert got["messaging.destination.partition.id"] == "0"
    assert got["messaging.kafka.offset"] == 0
    assert got["messaging.consumer.group.name"] == "inbox.161"
    with pytest.raises(ValueError, match="pseudonym"):
        telemetry.messaging_attributes("send", "t", **{"messaging.kafka.message.key": "k"})
    with pytest.raises(ValueError, match="operation"):
        telemetry.messaging_attributes("publish", "t")


def test_the_pii_scanner_catches_what_is_planted(tmp_path: Path) -> None:
    cpr, pseudonym = "140309-4321", "ab" * 32
    with Traced(tmp_path, metrics=False) as traced:
        tracer = telemetry.tracer("test")
        with tracer.start_as_current_span("clean", attributes={telemetry.EVENT_ID: "e-1"}):
            pass
        clean = traced.spans()
        assert_no_personal_data(clean, [cpr, pseudonym, "Freja Testesen"])
        with tracer.start_as_current_span("a", attributes={"x": "cpr 1403094321"}):
            pass
        with tracer.start_as_current_span("b") as span:
            span.add_event("row", {"key": pseudonym})
        with tracer.start_as_current_span("c") as span:
            span.set_status(trace.Status(trace.StatusCode.ERROR, "bad Freja Testesen"))
        with tracer.start_as_current_span(
            "d", links=[trace.Link(span.get_span_context(), {"k": cpr})]
        ):
            pass
        spans = traced.spans()
    findings = personal_data(spans, ["Freja Testesen"])
    assert {f.split(":")[0] for f in findings} == {"a", "b", "c", "d"}, findings
    assert any("CPR" in f for f in findings) and any("pseudonym" in f for f in findings)
    with pytest.raises(AssertionError, match="personal data"):
        assert_no_personal_data(spans, [])
