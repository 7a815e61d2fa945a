"""The inbox's spans and counts: each consumed record, each take-over, in its event's trace.

A task record is processed in a CONSUMER span that continues the record's ``traceparent``; a
take-over is sent in a PRODUCER span whose parent is the task's stored ``traceparent`` (so the
take-over lands in the partner event's trace) and which links to the caseworker's request.
Attributes are ids, units, kommunekoder and codes: never a task's details or a pseudonym.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from bus import telemetry

SCOPE = "ungebus.inbox"
COMPONENT_ATTRIBUTE = "ungebus.component"
ERROR_TYPE = "ungebus.error_type"

tracer = telemetry.tracer(SCOPE)
meter = telemetry.meter(SCOPE)
tasks_stored = meter.create_counter(
    "ungebus.tasks.stored", unit="{task}", description="new tasks stored in the inbox"
)
tasks_taken_over = meter.create_counter(
    "ungebus.tasks.taken_over", unit="{task}", description="take-overs acknowledged by Kafka"
)
dead_letters = meter.create_counter(
    "ungebus.deadletters", unit="{record}", description="records sent to the dead-letter topic"
)


@contextmanager
def request_span(request: Request, route: str) -> Iterator[trace.Span]:
    """A SERVER span for a caseworker's request (continuing the client's trace if it sent one).

    The take-over service adds what happened (outcome, task, unit) to it.
    """
    parent = telemetry.extract([("traceparent", request.headers.get("traceparent"))])
    with tracer.start_as_current_span(
        f"{request.method} {route}",
        context=parent,
        kind=SpanKind.SERVER,
        attributes={"http.request.method": request.method, "http.route": route},
        record_exception=False,  # exception texts may quote what the caseworker typed
        set_status_on_exception=False,
    ) as span:
        yield span
