"""The connectors' spans and counts: one SERVER span per event request, accepted and rejected.

The partner's ``traceparent`` is continued when valid (its ``tracestate`` is not: partner
data stays at the edge), and always sampled: which events the bus traces is the bus's choice.
Spans and counts name kinds, partners, fields and reason codes, never a value a partner sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bus import telemetry
from bus.telemetry import EVENT_ID, EVENT_KIND, OUTCOME, PARTNER, SOURCE_KIND
from schemas import PARTNER_KINDS

SCOPE = "ungebus.connectors"
CHANNEL = "ungebus.channel"
REASON = "ungebus.reason"
FIELD = "ungebus.field"
EVENTS_PREFIX = "/v1/events/"
_STATE_KEY = "ungebus.request_trace"

tracer = telemetry.tracer(SCOPE)
_meter = telemetry.meter(SCOPE)
accepted = _meter.create_counter(
    "ungebus.events.accepted", unit="{event}", description="partner events stored in Kafka"
)
rejected = _meter.create_counter(
    "ungebus.events.rejected", unit="{event}", description="partner events refused, by reason"
)

# HTTP status -> reason code; the file drop maps its row error codes with ``reason_of``.
STATUS_REASONS = {
    401: "unauthorized",
    403: "forbidden",
    404: "unknown_kind",
    413: "too_large",
    422: "invalid",
    503: "kafka_unavailable",
}
_FORBIDDEN_CODES = frozenset({"kind_not_allowed", "source_not_allowed"})
_SAFE_FIELD = re.compile(r"[A-Za-z_()][A-Za-z0-9_.()\-]{0,63}")
_DIGITS = re.compile(r"\d{4}")


def reason_of(code: str) -> str:
    """A row error code (``kind_not_allowed``, ``too_large``, a pydantic type) as a reason."""
    if code in _FORBIDDEN_CODES:
        return "forbidden"
    if code == "too_large":
        return "too_large"
    return "invalid"


def safe_field(name: str) -> str:
    """A field path fit for a span: schema field names pass, a partner's odd key does not."""
    if _SAFE_FIELD.fullmatch(name) and not _DIGITS.search(name):
        return name
    return "(field)"


def failure(reason: str, errors: Iterable[Mapping[str, str]] = ()) -> str:
    """``invalid: subject.cpr (string_pattern_mismatch), left_on (missing)``: no values."""
    named = [f"{safe_field(e.get('field', ''))} ({safe_field(e.get('code', ''))})" for e in errors][
        :5
    ]
    return f"{reason}: {', '.join(named)}" if named else reason


def edge_parent(traceparent: str | bytes | None) -> Context:
    """The partner's trace to continue (sampled regardless of its flag), or a new one."""
    context = telemetry.extract([("traceparent", traceparent)]) if traceparent else Context()
    remote = telemetry.span_context_of(context)
    if remote is None or remote.trace_flags.sampled:
        return context
    sampled = SpanContext(
        remote.trace_id, remote.span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(sampled))


@dataclass
class RequestTrace:
    """What the handler learnt about one event request, for its span and its count."""

    kind: str | None
    partner: str | None = None
    event_id: str | None = None
    source_kind: str | None = None
    errors: list[Mapping[str, str]] = field(default_factory=list)

    def finish(self, span: trace.Span, status: int) -> None:
        span.set_attribute("http.response.status_code", status)
        for key, value in ((PARTNER, self.partner), (EVENT_ID, self.event_id)):
            if value is not None:
                span.set_attribute(key, value)
        if self.source_kind is not None:
            span.set_attribute(SOURCE_KIND, self.source_kind)
        # Partners are organisations, named in the partners file: fit for a label (a person
        # never is). Unknown before the token is checked (a 401): "".
        counted = {EVENT_KIND: self.kind or "unknown", PARTNER: self.partner or "", CHANNEL: "http"}
        if status == 202:
            span.set_attribute(OUTCOME, "accepted")
            accepted.add(1, {**counted, SOURCE_KIND: self.source_kind or ""})
            return
        reason = STATUS_REASONS.get(status, "error")
        span.set_attributes({OUTCOME: "rejected", REASON: reason})
        span.set_status(Status(StatusCode.ERROR, failure(reason, self.errors)))
        rejected.add(1, {**counted, REASON: reason})


def request_trace(request: Request) -> RequestTrace:
    """The request's ``RequestTrace`` (a detached one when the middleware is not installed)."""
    state = request.scope.get("state")
    found = state.get(_STATE_KEY) if isinstance(state, dict) else None
    return found if isinstance(found, RequestTrace) else RequestTrace(None)


class EventRequestSpans:
    """ASGI middleware: a SERVER span around each ``POST /v1/events/<kind>``, and its count.

    Outside the handler, so refusals before it (401, 413 on a declared length) count too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if scope.get("method") != "POST" or not path.startswith(EVENTS_PREFIX):
            await self.app(scope, receive, send)
            return
        kind = path.removeprefix(EVENTS_PREFIX)
        # Never the raw path in a span: a partner could put anything there.
        route = f"{EVENTS_PREFIX}{kind}" if kind in PARTNER_KINDS else EVENTS_PREFIX + "{kind}"
        note = RequestTrace(kind if kind in PARTNER_KINDS else None)
        scope.setdefault("state", {})[_STATE_KEY] = note
        traceparent = next((v for k, v in scope.get("headers", ()) if k == b"traceparent"), None)
        attributes: dict[str, Any] = {
            "http.request.method": "POST",
            "http.route": route,
            "url.scheme": scope.get("scheme", "http"),
            CHANNEL: "http",
        }
        if note.kind:
            attributes[EVENT_KIND] = note.kind
        status = [500]

        async def send_noting_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        with tracer.start_as_current_span(
            f"POST {route}",
            context=edge_parent(traceparent),
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,  # an exception's text may quote the payload
            set_status_on_exception=False,
        ) as span:
            try:
                await self.app(scope, receive, send_noting_status)
            except BaseException:
                status[0] = 500
                raise
            finally:
                note.finish(span, status[0])


def producer_attributes(
    topic: str, event_id: str, event_kind: str, source_kind: str, partner: str
) -> dict[str, Any]:
    attributes = telemetry.messaging_attributes("send", topic)
    attributes.update(
        {EVENT_ID: event_id, EVENT_KIND: event_kind, SOURCE_KIND: source_kind, PARTNER: partner}
    )
    return attributes
