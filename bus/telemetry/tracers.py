"""Tracers that may be made at import time: each span finds the current provider when it starts.

Before ``setup``, and with ``OTEL_SDK_DISABLED=true``, nothing is recorded, but trace context
still flows: spans are non-recording with real ids, so a ``traceparent`` travels every hop.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.util.types import Attributes

from bus.telemetry import state
from bus.telemetry.lean_spans import LeanTracer

_IDS = RandomIdGenerator()


class _Tracer(trace.Tracer):
    """Shared ``start_as_current_span``: start, make current, end (as the SDK does)."""

    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Any = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time)
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


class _Propagating(_Tracer):
    """No recording, real ids: the trace continues downstream even when this hop is dark."""

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Any = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:
            trace_id, flags, trace_state = parent.trace_id, parent.trace_flags, parent.trace_state
        else:
            # Sampled, so a component that does record keeps the spans of this trace.
            trace_id, flags, trace_state = (
                _IDS.generate_trace_id(),
                TraceFlags(TraceFlags.SAMPLED),
                None,
            )
        span_context = SpanContext(
            trace_id,
            _IDS.generate_span_id(),
            is_remote=False,
            trace_flags=flags,
            trace_state=trace_state,
        )
        return NonRecordingSpan(span_context)


_PROPAGATING = _Propagating()


class _KernelTracer(_Tracer):
    def __init__(self, name: str) -> None:
        self._name = name

    def _real(self) -> LeanTracer | _Propagating:
        current = state.STATE
        if current is None:
            return _PROPAGATING
        found = current.tracers.get(self._name)
        if found is None:
            found = current.tracers.setdefault(
                self._name,
                LeanTracer(self._name, current.tracer_provider, current.span_processor),
            )
        return found

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Any = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        return self._real().start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )


def tracer(name: str) -> trace.Tracer:
    """A tracer that records once ``setup`` ran (and propagates context before that); its
    spans are lean (``bus.telemetry.lean_spans``) and exported by the SDK's batch processor."""
    return _KernelTracer(name)
