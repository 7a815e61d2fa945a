"""Connector tracing against the real broker: the partner's request and the record it became
are one trace, each dropped row is its own trace, the counts are on the metrics endpoint, and
no span carries personal data.

Spans go through the real file exporter that ``ungebus trace`` reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from bus.partners import load_partners
from bus.telemetry.trace_cli import trace
from bus.topics import ensure_topics
from connectors.files import FileDrop
from connectors.http_api import create_app
from connectors.ingest import connector_topics, topic_for
from connectors.publisher import KafkaPublisher
from connectors.server import serving
from connectors.settings import ConnectorSettings
from schemas import pseudonym
from tests.support import sealed
from tests.support.connectors_harness import bearer, connector_settings, read_all
from tests.support.partner_payloads import partner_name, payloads, write_partners
from tests.support.pii import assert_no_personal_data
from tests.support.traced import Traced, by_name, hex_id, metric_value

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_telemetry")]
KIND = "dropout_notice"
PARTNER_TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def personal(settings: ConnectorSettings, payload: dict[str, Any]) -> list[str]:
    """What must never be in a span: the CPR (with and without dash), pseudonym, name."""
    subject = payload["subject"]
    return [
        subject["cpr"],
        pseudonym(subject["cpr"], settings.pseudonym_key()),
        subject.get("name", ""),
    ]


@pytest.fixture
def settings(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> ConnectorSettings:
    settings = connector_settings(kafka_bootstrap, unique("t"), tmp_path, file_settle_s=0)
    ensure_topics(settings.kafka_config(), connector_topics(settings.topics))
    return settings


def test_an_http_event_and_its_record_are_one_trace(
    settings: ConnectorSettings, tmp_path: Path
) -> None:
    by_kind = payloads(seed=41, per_kind=1)
    tokens = write_partners(tmp_path / "partners.toml", by_kind)
    payload = by_kind[KIND][0]
    with Traced(tmp_path / "telemetry", "ungebus-connector-http") as traced:
        app = create_app(settings, load_partners(tmp_path / "partners.toml"))
        with serving(app, settings) as url, httpx.Client(base_url=url, timeout=30) as http:
            response = http.post(
                f"/v1/events/{KIND}",
                json=payload,
                headers=bearer(tokens, KIND) | {"traceparent": PARTNER_TRACE},
            )
            assert response.status_code == 202, response.text
        event_id = response.json()["event_id"]
        spans = traced.spans()

    (message,) = read_all(settings)
    topic = topic_for(KIND, settings.topics)
    _, trace_id, parent_id, _ = dict(message.headers())["traceparent"].decode().split("-")
    server = by_name(spans, f"POST /v1/events/{KIND}")
    producer = by_name(spans, f"send {topic}")

    # The partner's trace continues: request -> PRODUCER span -> the record's traceparent.
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert server["context"]["trace_id"] == producer["context"]["trace_id"] == "0x" + trace_id
    assert server["parent_id"] == "0x00f067aa0ba902b7" and server["kind"] == "SpanKind.SERVER"
    assert producer["parent_id"] == server["context"]["span_id"]
    assert hex_id(producer["context"]["span_id"]) == int(parent_id, 16)
    assert producer["kind"] == "SpanKind.PRODUCER"
    assert (
        producer["attributes"]
        | {
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "messaging.destination.partition.id": str(message.partition()),
            "messaging.kafka.offset": message.offset(),
            "ungebus.event_id": event_id,
        }
        == producer["attributes"]
    )
    assert {k: server["attributes"].get(k) for k in ("ungebus.event_kind", "ungebus.outcome")} == {
        "ungebus.event_kind": KIND,
        "ungebus.outcome": "accepted",
    }
    assert server["attributes"]["ungebus.partner"] == partner_name(KIND)
    assert server["attributes"]["ungebus.source_kind"] == "institution"
    assert server["attributes"]["ungebus.event_id"] == event_id
    assert server["resource"]["attributes"]["service.name"] == "ungebus-connector-http"
    assert_no_personal_data(spans, personal(settings, payload))

    # What an operator sees: ungebus trace over the same span files.
    shown = CliRunner().invoke(trace, [event_id, "--dir", str(traced.settings.traces_dir)])
    assert shown.exit_code == 0, shown.output
    assert f"POST /v1/events/{KIND}" in shown.output and f"send {topic}" in shown.output
    assert "accepted" in shown.output


def test_the_counts_are_on_the_metrics_endpoint_and_refusals_on_their_spans(
    settings: ConnectorSettings, tmp_path: Path
) -> None:
    by_kind = payloads(seed=43, per_kind=3)
    tokens = write_partners(tmp_path / "partners.toml", by_kind)
    good = by_kind[KIND]
    cpr = good[0]["subject"]["cpr"]
    invalid = good[0] | {"subject": good[0]["subject"] | {"cpr": cpr[:6] + "-12x4"}}
    with Traced(tmp_path / "telemetry", "ungebus-connector-http") as traced:
        app = create_app(settings, load_partners(tmp_path / "partners.toml"))
        with serving(app, settings) as url, httpx.Client(base_url=url, timeout=30) as http:
            for payload in good:
                response = http.post(
                    f"/v1/events/{KIND}", json=payload, headers=bearer(tokens, KIND)
                )
                assert response.status_code == 202, response.text
            refused = http.post(f"/v1/events/{KIND}", json=invalid, headers=bearer(tokens, KIND))
            assert refused.status_code == 422
            assert http.post(f"/v1/events/{KIND}", json=good[0]).status_code == 401
            assert http.post("/v1/events/1403094321", json=good[0]).status_code == 404
        text = traced.scrape()
        spans = traced.spans()

    def count(name: str, **labels: str) -> float | None:
        return metric_value(text, name, ungebus_event_kind=KIND, ungebus_channel="http", **labels)

    partner = partner_name(KIND)  # an organisation: counted per partner (a 401 has none yet)
    assert count("ungebus_events_accepted_total", ungebus_source_kind="institution",
                 ungebus_partner=partner) == 3, text  # fmt: skip
    assert count("ungebus_events_rejected_total", ungebus_reason="invalid",
                 ungebus_partner=partner) == 1  # fmt: skip
    assert count("ungebus_events_rejected_total", ungebus_reason="unauthorized",
                 ungebus_partner="") == 1  # fmt: skip
    assert (
        metric_value(text, "ungebus_events_rejected_total", ungebus_reason="unknown_kind",
                     ungebus_event_kind="unknown") == 1
    )  # fmt: skip
    servers = [s for s in spans if s["kind"] == "SpanKind.SERVER"]
    assert len(servers) == 6
    (invalid_span,) = [s for s in servers if s["attributes"].get("ungebus.reason") == "invalid"]
    assert invalid_span["status"]["status_code"] == "ERROR"
    assert invalid_span["status"]["description"].startswith("invalid: subject.cpr (")
    (unknown,) = [s for s in servers if s["attributes"].get("ungebus.reason") == "unknown_kind"]
    assert unknown["name"] == "POST /v1/events/{kind}"  # never the raw path
    assert_no_personal_data(spans, [*personal(settings, good[0]), invalid["subject"]["cpr"]])


def test_each_dropped_row_is_its_own_trace_linked_to_the_file(
    settings: ConnectorSettings, tmp_path: Path
) -> None:
    by_kind = payloads(seed=47, per_kind=2)
    write_partners(tmp_path / "partners.toml", by_kind)
    rows = by_kind[KIND]
    bad = rows[0] | {"left_on": "not a date"}
    folder = tmp_path / "drop" / partner_name(KIND) / KIND
    folder.mkdir(parents=True)
    (folder / f"{rows[0]['subject']['cpr']}.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in [rows[0], bad, rows[1]])
    )
    publisher = KafkaPublisher(settings.connector_producer_config())
    try:
        with Traced(tmp_path / "telemetry", "ungebus-connector-files") as traced:
            drop = FileDrop(
                tmp_path / "drop",
                settings,
                load_partners(settings.partners_file),
                publisher,
                sealed.keyring(settings),
            )
            assert drop.poll(echo=lambda _line: None) == (0, 0)
            text = traced.scrape()
            spans = traced.spans()
    finally:
        publisher.close(5)

    messages = read_all(settings)
    assert len(messages) == 2
    file_span = by_name(spans, f"process file {KIND}")
    assert file_span["attributes"]["ungebus.rows.published"] == 2
    assert file_span["attributes"]["ungebus.rows.rejected"] == 1
    (rejected,) = file_span["events"]
    assert rejected["name"] == "row rejected"
    assert rejected["attributes"] == {
        "ungebus.row": 2,
        "ungebus.reason": "invalid",
        "ungebus.field": "left_on",
    }
    producers = [s for s in spans if s["kind"] == "SpanKind.PRODUCER"]
    assert len(producers) == 2
    by_span = {hex_id(s["context"]["span_id"]): s for s in producers}
    traces = set()
    for message in messages:
        _, trace_id, span_id, _ = dict(message.headers())["traceparent"].decode().split("-")
        producer = by_span[int(span_id, 16)]
        assert producer["context"]["trace_id"] == "0x" + trace_id
        assert producer["parent_id"] is None  # a trace of its own ...
        (link,) = producer["links"]  # ... linked to the file it came from
        assert link["context"]["span_id"] == file_span["context"]["span_id"]
        assert producer["attributes"]["messaging.kafka.offset"] == message.offset()
        traces.add(trace_id)
    assert len(traces) == 2 and "0x" + next(iter(traces)) != file_span["context"]["trace_id"]

    def count(name: str, **labels: str) -> float | None:
        return metric_value(text, name, ungebus_event_kind=KIND, ungebus_channel="file", **labels)

    assert count("ungebus_events_accepted_total", ungebus_partner=partner_name(KIND)) == 2, text
    assert count("ungebus_events_rejected_total", ungebus_reason="invalid",
                 ungebus_partner=partner_name(KIND)) == 1  # fmt: skip
    # The file was named after a CPR number: that name is in no span.
    assert_no_personal_data(spans, [*personal(settings, rows[0]), *personal(settings, rows[1])])
