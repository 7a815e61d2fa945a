"""One partner event is one trace: HTTP request -> connector -> router -> inbox -> take-over ->
tracker, every component a real process on the real broker, spans in the local trace files.

Then ``ungebus trace EVENT_ID`` prints that path, the router's metrics count the workload, and
no span anywhere carries the young person's CPR number, pseudonym or name.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bus.settings import PROJECT_ROOT
from bus.telemetry.trace_cli import load_spans
from bus.waiting import within
from consumers.inbox.caseworkers import Caseworker, add_account
from consumers.inbox.settings import InboxSettings
from deploy.local.broker import LocalKafka
from deploy.local.settings import StackSettings
from deploy.local.traffic import DemoPartners
from schemas import pseudonym
from tests.support.harness import Reader
from tests.support.partner_payloads import payloads, route_in_glostrup
from tests.support.pii import assert_no_personal_data
from tests.support.stack_harness import running_stack
from tests.support.traced import hex_id, metric_value

pytestmark = pytest.mark.integration

KIND = "dropout_notice"
HOPS = {  # (service, operation, span kind) that one partner event passes
    ("ungebus-connector-http", "POST", "SpanKind.SERVER"),
    ("ungebus-connector-http", "send", "SpanKind.PRODUCER"),
    ("ungebus-router", "process", "SpanKind.CONSUMER"),
    ("ungebus-router", "send", "SpanKind.PRODUCER"),
    ("ungebus-inbox", "process", "SpanKind.CONSUMER"),
    ("ungebus-inbox", "send", "SpanKind.PRODUCER"),
}


@pytest.fixture(scope="module")
def bus(
    kafka_bootstrap: str, local_broker: LocalKafka | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackSettings]:
    tmp = tmp_path_factory.mktemp("e2e")
    with running_stack(
        kafka_bootstrap,
        local_broker,
        tmp,
        "e2e",
        UNGEBUS_TRACKER_CHECK_INTERVAL_S="1",
        UNGEBUS_ROUTER_LIVENESS_INTERVAL_S="1",
    ) as settings:
        yield settings


def _attr(span: dict[str, Any], name: str) -> Any:
    return span["attributes"].get(name)


def _service(span: dict[str, Any]) -> str:
    return str(span["resource"]["attributes"]["service.name"])


def _scrape(settings: StackSettings, component: str) -> str:
    port = settings.component_metrics_port(component)
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text


def _partner_event(settings: StackSettings) -> tuple[dict[str, Any], str, str]:
    """A dropout notice about someone living in Glostrup, and the unit that must act on it."""
    payload = payloads(seed=41, per_kind=1)[KIND][0]
    payload = {
        **payload,
        "event_id": str(uuid.uuid4()),
        "subject": {**payload["subject"], "residence_kommunekode": "161"},
    }
    route, _record = route_in_glostrup(settings.pseudonym_key(), KIND, payload)
    return payload, route.unit, route.task_id


def test_one_partner_event_is_one_trace_from_request_to_take_over(
    bus: StackSettings, tmp_path: Path
) -> None:
    payload, unit, task_id = _partner_event(bus)
    inbox = InboxSettings(var_dir=bus.var_dir, inbox_kommunekode="161")
    token = add_account(
        inbox.users_file,
        Caseworker(f"cw-{uuid.uuid4().hex[:6]}", "161", unit),
        "pw",
        api_token=True,
    )
    partners = DemoPartners.load(bus)
    response = httpx.post(
        f"{bus.api_url}/v1/events/{KIND}",
        json=payload,
        headers={"Authorization": f"Bearer {partners.token(KIND)}"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    event_id = response.json()["event_id"]

    api = httpx.Client(
        base_url=bus.inbox_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    acks = Reader(bus, [bus.topics.task_acks_of("161")], f"e2e-{uuid.uuid4().hex[:6]}")

    def in_inbox(_: object) -> bool:
        return any(t["task_id"] == task_id for t in api.get("/api/tasks").json()["tasks"])

    acks.wait_for(in_inbox, what="the task in the inbox")
    taken = api.post(f"/api/tasks/{task_id}/take-over", json={"note": "ringer i dag"})
    assert taken.status_code == 200, taken.text

    # Every component exports its spans in batches (within 5 s): wait for the whole path,
    # which ends with the tracker closing the task.
    def spans() -> list[dict[str, Any]]:
        return load_spans(bus.traces_dir)

    def path() -> list[dict[str, Any]]:
        """The spans of the partner event's trace: the one its HTTP request began."""
        found = spans()
        began = {
            s["context"]["trace_id"]
            for s in found
            if _attr(s, "ungebus.event_id") == event_id
            and (_service(s), s["kind"]) == ("ungebus-connector-http", "SpanKind.SERVER")
        }
        return [s for s in found if s["context"]["trace_id"] in began]

    def complete(_: object) -> bool:
        found = path()
        hops = {(_service(s), s["name"].split(" ")[0], s["kind"]) for s in found}
        closed = any(  # by the tracker (the inbox's own spans say taken_over too): on the
            # take-over's record, or on the task's when the take-over was read first
            _service(s) == "ungebus-router"
            and s["name"].startswith("process ")
            and _attr(s, "ungebus.outcome") == "taken_over"
            for s in found
        )
        # and the caseworker's own request, exported in its own batch: asserted on below
        asked = any(
            (_service(s), s["kind"]) == ("ungebus-inbox", "SpanKind.SERVER")
            and _attr(s, "ungebus.event_id") == event_id
            and s["context"]["trace_id"] not in {t["context"]["trace_id"] for t in found}
            for s in spans()
        )
        return hops >= HOPS and closed and asked

    acks.wait_for(complete, timeout=60, what="every hop of the event's trace")
    acks.close()
    trace = path()
    assert len({s["context"]["trace_id"] for s in trace}) == 1, "more than one trace"
    # Every span of the event carries its id, and all are in that one trace, but for the
    # caseworker's own request, which the take-over links to.
    elsewhere = [s for s in spans() if _attr(s, "ungebus.event_id") == event_id and s not in trace]
    assert [(_service(s), s["kind"]) for s in elsewhere] == [("ungebus-inbox", "SpanKind.SERVER")]
    take_over = next(s for s in trace if s["name"] == f"send {bus.topics.task_acks_of('161')}")
    assert [link["context"]["span_id"] for link in take_over["links"]] == [
        elsewhere[0]["context"]["span_id"]
    ]
    topics = bus.topics
    names = {s["name"] for s in trace}
    assert f"send {topics.inbound_events}" in names
    assert f"process {topics.inbound_events}" in names
    assert f"send {topics.tasks('161', unit)}" in names
    assert f"send {topics.task_acks_of('161')}" in names
    assert f"process {topics.task_acks_of('161')}" in names
    # Every span but the root has its parent in the trace: one unbroken path.
    ids = {hex_id(s["context"]["span_id"]) for s in trace}
    roots = [s for s in trace if s["parent_id"] is None or hex_id(s["parent_id"]) not in ids]
    assert len(roots) == 1 and roots[0]["kind"] == "SpanKind.SERVER", roots

    cpr = payload["subject"]["cpr"]
    assert_no_personal_data(
        spans(), [cpr, cpr.replace("-", ""), pseudonym(cpr, bus.pseudonym_key())]
    )

    printed = subprocess.run(
        [sys.executable, "-m", "bus", "trace", event_id],
        env={"UNGEBUS_VAR_DIR": str(bus.var_dir), "PATH": "/usr/bin:/bin"},
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    for service in ("ungebus-connector-http", "ungebus-router", "ungebus-inbox"):
        assert service in printed.stdout
    assert "taken_over" in printed.stdout and f"{unit}@161" in printed.stdout


def test_the_components_count_the_workload_on_their_metrics_endpoints(
    bus: StackSettings,
) -> None:
    """After the trace test's one event: accepted 1, routed 1 (per unit), taken over 1."""
    payload, unit, _task_id = _partner_event(bus)  # the same kind of event, not sent
    del payload
    connector = _scrape(bus, "connect-http")
    assert metric_value(connector, "ungebus_events_accepted_total",
                        ungebus_event_kind=KIND, ungebus_channel="http") == 1  # fmt: skip
    router = _scrape(bus, "streams")
    assert metric_value(router, "ungebus_routing_decisions_total", ungebus_outcome="routed",
                        ungebus_unit=unit, ungebus_kommunekode="161") == 1  # fmt: skip
    tracker = _scrape(bus, "tracker")
    assert metric_value(tracker, "ungebus_handovers_total", ungebus_outcome="taken_over",
                        ungebus_unit=unit, ungebus_kommunekode="161") == 1  # fmt: skip
    assert metric_value(router, "ungebus_routing_latency_milliseconds_count",
                        ungebus_unit=unit) == 1  # fmt: skip
    # Lag of the router's group on the topic the event came by: read from Kafka every second,
    # 1 until faust commits the event's offset (every few seconds), then 0.
    lag_topic = bus.topics.inbound_events

    def lag() -> float | None:
        scraped = _scrape(bus, "streams")
        return metric_value(scraped, "ungebus_consumer_lag", messaging_destination_name=lag_topic)

    within(lambda: lag() == 0, 30, every_s=0.5)
    assert lag() == 0
    inbox = _scrape(bus, "inbox")
    assert metric_value(inbox, "ungebus_tasks_taken_over_total",
                        ungebus_unit=unit, ungebus_kommunekode="161") == 1  # fmt: skip


def test_each_component_logs_in_as_its_own_principal(
    bus: StackSettings, local_broker: LocalKafka | None
) -> None:
    if local_broker is None or not local_broker.secure:
        pytest.skip("only the secured local broker has a principal per component")
    logs = {c: (bus.log_dir / f"{c}.log").read_text() for c in WHO}
    for component, principals in WHO.items():
        for principal in principals:
            assert f"lets in principal {principal}\n" in logs[component], component
        assert "lets in principal admin\n" not in logs[component], component


WHO = {  # as `make run` starts them (README: Who may do what)
    "streams": ("router", "tracker"),
    "connect-http": ("connector-http",),
    "connect-files": ("connector-files",),
    "connect-kafka": ("connector-kafka",),
    "inbox": ("inbox-161",),
    "audit-store": ("audit-store",),
}
