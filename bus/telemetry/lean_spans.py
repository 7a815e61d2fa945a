"""Spans at a fraction of the SDK's cost, exported by the SDK's own span processor.

The SDK's ``Span`` takes a lock for every attribute, validates and copies each one into a
bounded mapping, and keeps a span-metrics hook; here that came to ~70 µs a span, and the
router makes three spans for every event it routes (process, and a send for the task and the
audit record): about a quarter of its time for a traced event. A :class:`LeanSpan` keeps
what a span is (name, ids, parent, kind, attributes, events, links, status, start and end) in
plain fields and, on ``end()``, hands the SDK's span processor the same ``ReadableSpan`` the
SDK would. The exporters (OTLP, the local span file) and ``ungebus trace`` cannot tell the
difference.

Kept from the SDK: the provider's sampler decides (so ``OTEL_TRACES_SAMPLER`` works as
documented), its id generator makes the ids, its resource names the service. Left out: span
limits (at most 128 attributes a span; ours carry about ten), ``on_start`` callbacks (the
batch processor has none) and the SDK's own span metrics. Attribute values are checked as the
SDK cleans them (with its own function): sequences become tuples, mappings are copied, other
objects become their text.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from time import time_ns
from typing import TYPE_CHECKING, cast

from opentelemetry import trace
from opentelemetry.attributes import _clean_attribute_value  # the SDK's own cleaning
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import Attributes, AttributeValue

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

_SCALARS = (str, bool, int, float)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_UNSET = Status(StatusCode.UNSET)


def _clean(value: object) -> AttributeValue:
    """The value as the SDK keeps it: sequences as tuples, mappings copied, others as text."""
    return _clean_attribute_value(cast(AttributeValue, value), None)


class LeanTracer:
    """Starts :class:`LeanSpan` s for one instrumentation scope (``bus.telemetry.tracer`` makes
    them current and ends them)."""

    def __init__(self, name: str, provider: TracerProvider, processor: SpanProcessor) -> None:
        self._scope = InstrumentationScope(name)
        self._provider = provider
        self._processor = processor

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,  # trace.use_span records exceptions and sets status
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        parent: SpanContext | None = trace.get_current_span(context).get_span_context()
        provider = self._provider
        ids = provider.id_generator
        if parent is not None and parent.is_valid:
            trace_id, random_id = parent.trace_id, parent.trace_flags.random_trace_id
        else:
            parent, trace_id, random_id = None, ids.generate_trace_id(), ids.is_trace_id_random()
        links = tuple(links or ())
        sampled = provider.sampler.should_sample(context, trace_id, name, kind, attributes, links)
        flags = _SAMPLED if sampled.decision.is_sampled() else _NOT_SAMPLED
        span_context = SpanContext(
            trace_id,
            ids.generate_span_id(),
            is_remote=False,
            trace_flags=TraceFlags(flags | TraceFlags.RANDOM_TRACE_ID) if random_id else flags,
            trace_state=sampled.trace_state,
        )
        if not sampled.decision.is_recording():
            return trace.NonRecordingSpan(span_context)
        span = LeanSpan(self, name, span_context, parent, kind, links, start_time)
        if sampled.attributes:
            span.set_attributes(sampled.attributes)
        if attributes:
            span.set_attributes(attributes)
        return span

    def finish(self, span: LeanSpan, end_time: int) -> None:
        self._processor.on_end(
            ReadableSpan(
                name=span.name,
                context=span.context,
                parent=span.parent,
                resource=self._provider.resource,
                attributes=span.attributes,
                events=tuple(span.events),
                links=span.links,
                kind=span.kind,
                status=span.status,
                start_time=span.start_time,
                end_time=end_time,
                instrumentation_scope=self._scope,
            )
        )


class LeanSpan(trace.Span):
    """A recording span in plain fields; see the module's text for what it leaves out."""

    def __init__(
        self,
        tracer: LeanTracer,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        links: tuple[Link, ...],
        start_time: int | None,
    ) -> None:
        self._tracer = tracer
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.links = links
        self.start_time = start_time if start_time is not None else time_ns()
        self.attributes: dict[str, AttributeValue] = {}
        self.events: list[Event] = []
        self.status = _UNSET
        self._ended = False

    def end(self, end_time: int | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        self._tracer.finish(self, end_time if end_time is not None else time_ns())

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return not self._ended

    def set_attributes(self, attributes: Mapping[str, object]) -> None:
        if self._ended:
            return
        kept: dict[str, object] = self.attributes  # type: ignore[assignment]
        for key, value in attributes.items():
            if key and isinstance(key, str):  # the SDK drops the others
                # the plain values the components set need no cleaning
                kept[key] = value if type(value) in _SCALARS else _clean(value)

    def set_attribute(self, key: str, value: object) -> None:
        self.set_attributes({key: value})

    def add_event(
        self, name: str, attributes: Attributes = None, timestamp: int | None = None
    ) -> None:
        if self._ended:
            return
        kept = {k: _clean(v) for k, v in (attributes or {}).items() if k and isinstance(k, str)}
        self.events.append(Event(name, kept, timestamp if timestamp is not None else time_ns()))

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        if not self._ended and context.is_valid:
            self.links = (*self.links, Link(context, attributes))

    def update_name(self, name: str) -> None:
        if not self._ended:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """As the SDK: OK is final, UNSET is ignored."""
        if self._ended or self.status.status_code is StatusCode.OK:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self.status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """The SDK's ``exception`` event: type, message, stack trace."""
        kind = type(exception)
        module = kind.__module__
        recorded: dict[str, AttributeValue] = {
            "exception.type": f"{module}.{kind.__qualname__}"
            if module and module != "builtins"
            else kind.__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        self.add_event("exception", {**recorded, **(attributes or {})}, timestamp)
