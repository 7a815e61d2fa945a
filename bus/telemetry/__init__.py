"""OpenTelemetry for every component: one trace per partner event, metrics per component.

``setup(service, settings)`` once at each entry point, ``shutdown()`` on exit. Spans go to OTLP
when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set, else to JSON lines in
``settings.traces_dir`` that ``ungebus trace`` reads. Metrics are served for Prometheus on
``settings.metrics_port`` and pushed by OTLP when an endpoint is set.

``tracer()`` and ``meter()`` may be called at import time: they resolve the providers on every
use, so instruments made before ``setup`` (or before a test's second ``setup``) still count.
Before ``setup``, and with ``OTEL_SDK_DISABLED=true``, nothing is recorded, but trace context
still flows: spans are non-recording with real ids, so a ``traceparent`` travels every hop.

Attributes carry ids, kinds, units and codes; never CPR numbers, pseudonyms (record keys),
names or free text.

This package's modules, in the order a span takes:

=================  ==========================================================================
``attributes``     the ``ungebus.*`` attribute names, messaging conventions, span names
``state``          the process-wide state ``setup`` installs (one lock, one generation)
``lifecycle``      ``setup``/``shutdown``: providers, span exporter, metric readers, endpoint
``tracers``        ``tracer()``: proxies that record once set up, propagate context before
``lean_spans``     the spans those tracers make, at a fraction of the SDK's cost
``meters``         ``meter()``: proxy instruments that count once set up
``lag``            the ``ungebus.consumer.lag`` gauge
``propagation``    ``traceparent`` in and out of Kafka and HTTP headers
``span_files``     the local JSON-lines span files and their rotation
``trace_cli``      ``ungebus trace``, reading those files
=================  ==========================================================================

Import the names from here (``from bus import telemetry``); the modules are how it is built.
"""

from __future__ import annotations

from bus.telemetry.attributes import (
    BASIS,
    EVENT_ID,
    EVENT_KIND,
    KOMMUNEKODE,
    LAG_METRIC,
    NAMESPACE,
    OUTCOME,
    PARTNER,
    RULE_ID,
    SOURCE_KIND,
    TASK_ID,
    UNIT,
    messaging_attributes,
    span_name,
)
from bus.telemetry.lag import LagGauge, LagReader, consumer_lag_gauge
from bus.telemetry.lifecycle import (
    TelemetryError,
    flush,
    metrics_address,
    recording,
    service_name,
    setup,
    shutdown,
)
from bus.telemetry.meters import meter
from bus.telemetry.propagation import (
    Header,
    context_from_traceparent,
    extract,
    inject,
    span_context_of,
    traceparent_of_current,
    with_traceparent,
)
from bus.telemetry.tracers import tracer

__all__ = [
    "BASIS",
    "EVENT_ID",
    "EVENT_KIND",
    "KOMMUNEKODE",
    "LAG_METRIC",
    "NAMESPACE",
    "OUTCOME",
    "PARTNER",
    "RULE_ID",
    "SOURCE_KIND",
    "TASK_ID",
    "UNIT",
    "Header",
    "LagGauge",
    "LagReader",
    "TelemetryError",
    "consumer_lag_gauge",
    "context_from_traceparent",
    "extract",
    "flush",
    "inject",
    "messaging_attributes",
    "meter",
    "metrics_address",
    "recording",
    "service_name",
    "setup",
    "shutdown",
    "span_context_of",
    "span_name",
    "traceparent_of_current",
    "tracer",
    "with_traceparent",
]
