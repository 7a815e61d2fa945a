"""What operators see of the router and the tracker: spans for every record, and metrics.

The router and the tracker decide; they report what they decided to an observer (a no-op in
unit tests). Here the observer becomes OpenTelemetry: attributes on the current span and
counters. :class:`Traced` wraps the handling of one consumed record in a CONSUMER span (the
child of the record's ``traceparent``) and each output in a PRODUCER span whose context then
travels in the output's ``traceparent`` header, so a partner event stays one trace.

An output whose ``traceparent`` is not the consumed record's belongs to another trace: a held
event released by a consent, or an escalation found by the timer. Its send span continues
that trace (the event's own), with a link to the span that caused it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Link, SpanKind

from bus import telemetry
from streams.handover.tracker import OpenCounts
from streams.routing.decide import Denial, Hold, InboundEvent, Route
from streams.routing.outputs import InMessage, Output
from streams.routing.policy import CONSENT_PREFIX


class RoutingTelemetry:
    """The router's and the tracker's observer: span attributes and metrics."""

    def __init__(self, component: str) -> None:
        self._component = component
        meter = telemetry.meter(f"ungebus.{component}")
        self._decisions = meter.create_counter(
            "ungebus.routing.decisions",
            unit="{decision}",
            description="routing outcomes per unit and basis: routed, held, purged, denied, "
            "duplicate; erased: a record of a person whose data key is gone, passed over",
        )
        self._dead_letters = meter.create_counter(
            "ungebus.deadletters", unit="{record}", description="records sent to the dead letters"
        )
        self._latency = meter.create_histogram(
            "ungebus.routing.latency",
            unit="ms",
            description="from the partner event's publish to its task handed to Kafka",
        )
        self._handovers = meter.create_counter(
            "ungebus.handovers",
            unit="{task}",
            description="tasks taken over, escalated, or take-overs rejected, per unit",
        )
        self._open: OpenCounts = {}
        self._open_lock = threading.Lock()
        meter.create_observable_gauge(
            "ungebus.tasks.open", [self._observe_open(0)], unit="{task}",
            description="routed tasks nobody has taken over yet",
        )  # fmt: skip
        meter.create_observable_gauge(
            "ungebus.tasks.overdue", [self._observe_open(1)], unit="{task}",
            description="open tasks past their take-over deadline",
        )  # fmt: skip

    # -- the router's observer --------------------------------------------------------------
    def decided(
        self,
        event: InboundEvent,
        outcome: str,
        routes: Sequence[Route] = (),
        holds: Sequence[Hold] = (),
        denials: Sequence[Denial] = (),
        purged: Sequence[Hold] = (),
    ) -> None:
        attributes = {
            telemetry.EVENT_ID: event.event_id,
            telemetry.EVENT_KIND: event.name,
            telemetry.SOURCE_KIND: event.source_kind,
            telemetry.OUTCOME: outcome,
        }
        trace.get_current_span().set_attributes(attributes)
        kind = {telemetry.EVENT_KIND: event.name}
        for route in routes:
            self._decisions.add(1, {**kind, telemetry.OUTCOME: "routed", **_where(route)})
        for state, waiting in (("held", holds), ("purged", purged)):
            for hold in waiting:
                place = {telemetry.UNIT: hold.unit, telemetry.KOMMUNEKODE: hold.kommunekode}
                basis = {telemetry.BASIS: f"{CONSENT_PREFIX}{hold.purpose}"}
                self._decisions.add(1, {**kind, telemetry.OUTCOME: state, **place, **basis})
        for _denial in denials:
            self._decisions.add(1, {**kind, telemetry.OUTCOME: "denied"})
        if outcome == "duplicate" or (outcome == "denied" and not denials):
            # a repeated event, or a sender no partner may speak for (no rule was asked)
            self._decisions.add(1, {**kind, telemetry.OUTCOME: outcome})

    def dead_letter(self, error_type: str) -> None:
        trace.get_current_span().set_attribute(telemetry.OUTCOME, "dead_letter")
        self._dead_letters.add(
            1, {"ungebus.component": self._component, "ungebus.error_type": error_type}
        )

    def erased(self, event_id: str | None) -> None:
        """A record of a person whose data key is erased, passed over (not a dead letter)."""
        span = trace.get_current_span()
        span.set_attribute(telemetry.OUTCOME, "erased")
        if event_id is not None:
            span.set_attribute(telemetry.EVENT_ID, event_id)
        self._decisions.add(1, {telemetry.OUTCOME: "erased"})

    # -- the tracker's observer -------------------------------------------------------------
    def handover(
        self, outcome: str, task_id: str, event_id: str, unit: str, kommunekode: str
    ) -> None:
        """A task opened, taken over, escalated, or a take-over rejected."""
        place = {telemetry.UNIT: unit, telemetry.KOMMUNEKODE: kommunekode}
        trace.get_current_span().set_attributes(
            {telemetry.OUTCOME: outcome, telemetry.TASK_ID: task_id,
             telemetry.EVENT_ID: event_id, **place}
        )  # fmt: skip
        if outcome != "opened":
            self._handovers.add(1, {telemetry.OUTCOME: outcome, **place})

    def open_tasks(self, counts: OpenCounts) -> None:
        """The timer's latest count of open and overdue tasks per unit."""
        with self._open_lock:
            self._open = dict(counts)

    def _observe_open(self, index: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            with self._open_lock:
                counts = dict(self._open)
            for (unit, kommunekode), values in counts.items():
                yield Observation(
                    values[index], {telemetry.UNIT: unit, telemetry.KOMMUNEKODE: kommunekode}
                )

        return observe

    # -- latency ----------------------------------------------------------------------------
    def routed_after(self, message: InMessage, outputs: Sequence[Output]) -> None:
        """Latency from the partner's publish (the record's timestamp) for each task made."""
        if message.timestamp is None:
            return
        elapsed_ms = (time.time() - message.timestamp) * 1000
        for output in outputs:
            if output.labels.get("ungebus.record") == "routed_task":
                self._latency.record(elapsed_ms, {telemetry.UNIT: output.labels[telemetry.UNIT]})


def _where(route: Route) -> dict[str, str]:
    return {
        telemetry.UNIT: route.unit,
        telemetry.KOMMUNEKODE: route.kommunekode,
        telemetry.BASIS: route.basis,
    }


class Traced:
    """Spans around the handling of consumed records and around every output.

    The router makes three spans a record (process, and a send for its task and its audit
    record), so the send spans are made without becoming the current span and the
    ``traceparent`` header is written from the span's ids: the same spans, at about half the
    cost of the SDK's context-manager path.
    """

    def __init__(self, service: str, group: str) -> None:
        self._tracer = telemetry.tracer(service)
        self._group = group
        self._send_attributes: dict[str, dict[str, Any]] = {}  # per topic, made once

    def process(
        self, message: InMessage, handle: Callable[[InMessage], list[Output]]
    ) -> list[Output]:
        """Handle ``message`` in a CONSUMER span continuing its trace; outputs carry theirs.

        Without recording (tracing off) there are no spans to make: the outputs keep the
        trace context the router gave them, the consumed record's or a held event's own.
        """
        if not telemetry.recording():
            return handle(message)
        attributes = telemetry.messaging_attributes(
            "process", message.topic, message.partition, message.offset,
            consumer_group=self._group,
        )  # fmt: skip
        span = self._tracer.start_span(
            telemetry.span_name("process", message.topic),
            context=telemetry.extract(message.headers),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )
        with trace.use_span(span, end_on_exit=True):
            return self.sending(handle(message), message.traceparent)

    def sending(self, outputs: Sequence[Output], consumed: str | None = None) -> list[Output]:
        """Each output in a PRODUCER span; its ``traceparent`` header becomes that span's."""
        if not telemetry.recording():
            return list(outputs)
        cause = trace.get_current_span().get_span_context()
        sent = []
        for output in outputs:
            carried = output.header("traceparent")
            links: list[Link] = []
            context = None  # the current span: the consumed record's trace
            if carried is not None and carried != consumed:
                context = telemetry.context_from_traceparent(carried)
                links = [Link(cause)] if cause.is_valid else []
            span = self._tracer.start_span(
                telemetry.span_name("send", output.topic),
                context=context,
                kind=SpanKind.PRODUCER,
                links=links,
                attributes=self._attributes_of(output),
            )
            span.end()
            headers = telemetry.with_traceparent(output.headers, span.get_span_context())
            sent.append(replace(output, headers=headers))
        return sent

    def _attributes_of(self, output: Output) -> dict[str, Any]:
        common = self._send_attributes.get(output.topic)
        if common is None:
            common = self._send_attributes.setdefault(
                output.topic, telemetry.messaging_attributes("send", output.topic)
            )
        labels = {k: v for k, v in output.labels.items() if k != "ungebus.record"}
        return {**common, **labels} if labels else common
