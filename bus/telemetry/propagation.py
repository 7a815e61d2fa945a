"""W3C trace context in Kafka and HTTP headers: a ``traceparent`` travels every hop."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACE_HEADERS = ("traceparent", "tracestate")

Header = tuple[str, str | bytes | None]


def inject(headers: Iterable[Header], context: Context | None = None) -> list[Header]:
    """``headers`` with ``traceparent`` (and ``tracestate``) of the current span (or of
    ``context``) in place of any there; unchanged when there is no valid span."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    if "traceparent" not in carrier:
        return list(headers)
    kept: list[Header] = [(k, v) for k, v in headers if k not in _TRACE_HEADERS]
    return kept + [(k, v.encode("ascii")) for k, v in carrier.items()]


def with_traceparent(
    headers: Iterable[tuple[str, bytes]], span_context: SpanContext
) -> list[tuple[str, bytes]]:
    """``headers`` carrying ``span_context`` as W3C ``traceparent`` (and ``tracestate``).

    What :func:`inject` writes for a current span, written from the ids directly: the router
    does this for every output it sends.
    """
    if not span_context.is_valid:
        return list(headers)
    kept = [(k, v) for k, v in headers if k not in _TRACE_HEADERS]
    traceparent = (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
        f"-{span_context.trace_flags:02x}"
    )
    kept.append(("traceparent", traceparent.encode("ascii")))
    if span_context.trace_state:
        kept.append(("tracestate", span_context.trace_state.to_header().encode("ascii")))
    return kept


def extract(
    headers: Iterable[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None,
) -> Context:
    """The remote parent in Kafka or HTTP headers (W3C trace context); empty when invalid."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    carrier: dict[str, str] = {}
    for key, value in pairs:
        name = key.lower()
        if name in _TRACE_HEADERS and value is not None:
            carrier[name] = value.decode("latin-1") if isinstance(value, bytes) else value
    if not carrier:
        return Context()
    return _PROPAGATOR.extract(carrier, context=Context())


def context_from_traceparent(traceparent: str | None) -> Context:
    """The context of a stored ``traceparent`` (e.g. a task row's), empty when none or invalid."""
    return extract({"traceparent": traceparent}) if traceparent else Context()


def traceparent_of_current(context: Context | None = None) -> str | None:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return carrier.get("traceparent")


def span_context_of(context: Context) -> SpanContext | None:
    """The span context a ``Context`` holds, for a span link; None when it holds none."""
    found = trace.get_current_span(context).get_span_context()
    return found if found.is_valid else None
