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
"""

from __future__ import annotations

import atexit
import datetime as dt
import io
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, CallbackT, Observation
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from bus.telemetry.lean_spans import LeanTracer

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

    from bus.settings import Settings

# Domain attributes: spans are found by these names (``ungebus trace``), so use the constants.
EVENT_ID = "ungebus.event_id"
EVENT_KIND = "ungebus.event_kind"
SOURCE_KIND = "ungebus.source_kind"
OUTCOME = "ungebus.outcome"
UNIT = "ungebus.unit"
KOMMUNEKODE = "ungebus.kommunekode"
BASIS = "ungebus.basis"
TASK_ID = "ungebus.task_id"
RULE_ID = "ungebus.rule_id"
PARTNER = "ungebus.partner"
NAMESPACE = "ungebus"
LAG_METRIC = "ungebus.consumer.lag"

_OPERATIONS = ("send", "receive", "process")
_FORBIDDEN_ATTRIBUTES = frozenset({"messaging.kafka.message.key", "messaging.message.body.size"})
_PROPAGATOR = TraceContextTextMapPropagator()
_IDS = RandomIdGenerator()
_TRACE_HEADERS = ("traceparent", "tracestate")

V = TypeVar("V")


class TelemetryError(RuntimeError):
    """Telemetry could not start (e.g. the metrics port is taken)."""


@dataclass
class _State:
    service: str
    tracer_provider: TracerProvider
    span_processor: SpanProcessor  # the provider's: lean spans end into it
    meter_provider: MeterProvider | None
    span_file: io.TextIOBase | None
    metrics_server: WSGIServer | None
    tracers: dict[str, LeanTracer] = field(default_factory=dict)
    meters: dict[str, metrics.Meter] = field(default_factory=dict)


_LOCK = threading.RLock()
_STATE: _State | None = None
_GENERATION = 0  # bumped by setup and shutdown: proxies re-resolve their real instruments
_ATEXIT = False


def _sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def _env_int(name: str, default: int) -> int:
    """An SDK setting from the environment (the SDK's own variable), else our default."""
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else default


def _env(*names: str) -> bool:
    return any(os.environ.get(name, "").strip() for name in names)


def _json_line(span: ReadableSpan) -> str:
    """One span as a JSON line, in the shape of the SDK's ``to_json`` (what ``ungebus trace``
    reads), built directly: ``to_json`` costs about 75 µs a span, more than making the span."""
    context = span.get_span_context()
    assert context is not None
    parent = span.parent
    line: dict[str, Any] = {
        "name": span.name,
        "context": _ids(context),
        "kind": str(span.kind),
        "parent_id": f"0x{parent.span_id:016x}" if parent is not None else None,
        "start_time": _iso(span.start_time),
        "end_time": _iso(span.end_time),
        "status": {
            "status_code": span.status.status_code.name,
            **({"description": span.status.description} if span.status.description else {}),
        },
        "attributes": dict(span.attributes or {}),
        "events": [
            {
                "name": event.name,
                "timestamp": _iso(event.timestamp),
                "attributes": dict(event.attributes or {}),
            }
            for event in span.events
        ],
        "links": [
            {"context": _ids(link.context), "attributes": dict(link.attributes or {})}
            for link in span.links
        ],
    }
    body = json.dumps(line, separators=(",", ":"), default=str)
    return f"{body[:-1]},{_resource_json(span.resource)}}}\n"


def _iso(nanoseconds: int | None) -> str | None:
    """The SDK's ``ns_to_iso_str`` (``2026-11-27T10:00:00.123456Z``), without ``strftime``."""
    if not nanoseconds:
        return None
    moment = dt.datetime.fromtimestamp(nanoseconds / 1e9, tz=dt.UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" -> "Z"


_RESOURCES: dict[int, tuple[Any, str]] = {}  # id -> (resource, its JSON member): a few per process


def _resource_json(resource: Any) -> str:
    found = _RESOURCES.get(id(resource))
    if found is None or found[0] is not resource:
        member = json.dumps(
            {"resource": {"attributes": dict(resource.attributes)}},
            separators=(",", ":"),
            default=str,
        )[1:-1]
        found = _RESOURCES[id(resource)] = (resource, member)
    return found[1]


def _ids(context: SpanContext) -> dict[str, str]:
    return {"trace_id": f"0x{context.trace_id:032x}", "span_id": f"0x{context.span_id:016x}"}


# -- lifecycle ------------------------------------------------------------------------------
def setup(service: str, settings: Settings) -> None:
    """Start tracing and metrics for this process as ``service``; later calls do nothing."""
    global _STATE, _GENERATION, _ATEXIT
    with _LOCK:
        if _STATE is not None or _sdk_disabled():
            return
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

        resource = Resource.create({"service.name": service, "service.namespace": NAMESPACE})
        tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        span_file: io.TextIOBase | None = None
        exporter: SpanExporter
        if _env("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        else:
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            from bus.telemetry.span_files import RotatingSpanFile, remove_stale

            settings.traces_dir.mkdir(parents=True, exist_ok=True)
            remove_stale(settings.traces_dir, settings.traces_keep_days)
            path = settings.traces_dir / f"{service}-{os.getpid()}.jsonl"
            span_file = RotatingSpanFile(path, settings.traces_max_mb * 1024 * 1024)
            exporter = ConsoleSpanExporter(out=cast(IO[str], span_file), formatter=_json_line)
        # A queue deep enough for a busy router's bursts (spans beyond it are dropped, never
        # waited for); exported every second, so `ungebus trace` sees a hop soon after.
        processor = BatchSpanProcessor(
            exporter,
            max_queue_size=_env_int("OTEL_BSP_MAX_QUEUE_SIZE", 65536),
            schedule_delay_millis=_env_int("OTEL_BSP_SCHEDULE_DELAY", 1000),
            max_export_batch_size=_env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 4096),
        )
        tracer_provider.add_span_processor(processor)
        try:
            meter_provider, server = _metrics(resource, settings)
        except BaseException:
            tracer_provider.shutdown()
            if span_file is not None:
                span_file.close()
            raise
        _STATE = _State(service, tracer_provider, processor, meter_provider, span_file, server)
        _GENERATION += 1
        for proxy in list(_METERS.values()):
            proxy.replay_observables()
        if not _ATEXIT:
            atexit.register(shutdown)
            _ATEXIT = True


def _metrics(resource: Any, settings: Settings) -> tuple[MeterProvider | None, WSGIServer | None]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader

    readers: list[MetricReader] = []
    server = None
    if settings.metrics_port is not None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.gc_collector import GCCollector
        from prometheus_client.process_collector import ProcessCollector

        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        GCCollector(registry=registry)
        readers.append(PrometheusMetricReader(registry=registry))
        try:
            server, _thread = start_http_server(
                settings.metrics_port, addr=settings.metrics_host, registry=registry
            )
        except OSError as exc:
            raise TelemetryError(
                f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} "
                f"({exc.strerror or exc}); set UNGEBUS_METRICS_PORT to a free port"
            ) from None
    if _env("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    if not readers:
        return None, None
    return MeterProvider(metric_readers=readers, resource=resource, shutdown_on_exit=False), server


def shutdown() -> None:
    """Flush and stop what ``setup`` started; safe to call twice or without ``setup``."""
    global _STATE, _GENERATION
    with _LOCK:
        state, _STATE = _STATE, None
        _GENERATION += 1
    if state is None:
        return
    state.tracer_provider.shutdown()  # flushes the batch processor
    if state.span_file is not None:
        state.span_file.close()
    if state.meter_provider is not None:
        state.meter_provider.shutdown()
    if state.metrics_server is not None:
        state.metrics_server.shutdown()
        state.metrics_server.server_close()


def recording() -> bool:
    """Whether spans are recorded in this process (``setup`` ran, the SDK is not disabled)."""
    return _STATE is not None


def flush(timeout_s: float = 10.0) -> bool:
    """Export every finished span (and metric) now; False when the exporters timed out."""
    state = _STATE
    if state is None:
        return True
    done = state.tracer_provider.force_flush(int(timeout_s * 1000))
    if state.meter_provider is not None:
        done = state.meter_provider.force_flush(int(timeout_s * 1000)) and done
    return done


def service_name() -> str | None:
    """The service ``setup`` ran for, or None when telemetry is not recording."""
    state = _STATE
    return state.service if state else None


def metrics_address() -> tuple[str, int] | None:
    """(host, port) of the Prometheus endpoint, or None when none is served."""
    state = _STATE
    if state is None or state.metrics_server is None:
        return None
    host, port = state.metrics_server.server_address[:2]
    return str(host), int(port)


# -- tracers --------------------------------------------------------------------------------
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
            trace_id, flags, state = parent.trace_id, parent.trace_flags, parent.trace_state
        else:
            # Sampled, so a component that does record keeps the spans of this trace.
            trace_id, flags, state = _IDS.generate_trace_id(), TraceFlags(TraceFlags.SAMPLED), None
        span_context = SpanContext(
            trace_id, _IDS.generate_span_id(), is_remote=False, trace_flags=flags, trace_state=state
        )
        return NonRecordingSpan(span_context)


_PROPAGATING = _Propagating()


class _KernelTracer(_Tracer):
    def __init__(self, name: str) -> None:
        self._name = name

    def _real(self) -> LeanTracer | _Propagating:
        state = _STATE
        if state is None:
            return _PROPAGATING
        found = state.tracers.get(self._name)
        if found is None:
            found = state.tracers.setdefault(
                self._name, LeanTracer(self._name, state.tracer_provider, state.span_processor)
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


# -- meters ---------------------------------------------------------------------------------
def _real_meter(name: str) -> metrics.Meter:
    state = _STATE
    if state is None or state.meter_provider is None:
        return _NOOP_METER
    found = state.meters.get(name)
    if found is None:
        found = state.meters.setdefault(name, state.meter_provider.get_meter(name))
    return found


_NOOP_METER = metrics.NoOpMeter("ungebus")


class _Synchronous:
    """An instrument that finds its real counterpart in the current providers on each use."""

    def __init__(self, meter: str, create: str, name: str, kwargs: Mapping[str, Any]) -> None:
        self._meter, self._create, self._name, self._kwargs = meter, create, name, dict(kwargs)
        self._generation = -1
        self._instrument: Any = None

    def _real(self) -> Any:
        if self._generation != _GENERATION:
            with _LOCK:
                self._generation = _GENERATION
                create = getattr(_real_meter(self._meter), self._create)
                self._instrument = create(self._name, **self._kwargs)
        return self._instrument


class _Counter(_Synchronous, metrics.Counter):
    def add(self, amount: float, attributes: Attributes = None, context: Any = None) -> None:
        self._real().add(amount, attributes, context)


class _UpDownCounter(_Synchronous, metrics.UpDownCounter):
    def add(self, amount: float, attributes: Attributes = None, context: Any = None) -> None:
        self._real().add(amount, attributes, context)


class _Histogram(_Synchronous, metrics.Histogram):
    def record(self, amount: float, attributes: Attributes = None, context: Any = None) -> None:
        self._real().record(amount, attributes, context)


class _Observable(
    metrics.ObservableCounter, metrics.ObservableGauge, metrics.ObservableUpDownCounter
):
    """Callbacks registered with every provider ``setup`` makes, for as long as the process."""

    def __init__(self, create: str, name: str, kwargs: Mapping[str, Any]) -> None:
        self._create, self._name, self._kwargs = create, name, dict(kwargs)


class _KernelMeter(metrics.Meter):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._synchronous: dict[tuple[str, str], Any] = {}
        self._observables: dict[str, _Observable] = {}

    def _sync(self, cls: type[V], create: str, name: str, **kwargs: Any) -> V:
        with _LOCK:
            found = self._synchronous.get((create, name))
            if found is None:
                found = cls(self.name, create, name, kwargs)  # type: ignore[call-arg]
                self._synchronous[(create, name)] = found
            return found

    def _observable(
        self, create: str, name: str, callbacks: Sequence[CallbackT] | None, **kwargs: Any
    ) -> _Observable:
        with _LOCK:
            if name in self._observables:
                raise ValueError(f"observable instrument {name} exists already in {self.name}")
            observable = _Observable(create, name, {"callbacks": list(callbacks or ()), **kwargs})
            self._observables[name] = observable
            if _STATE is not None:
                getattr(_real_meter(self.name), create)(name, **observable._kwargs)
            return observable

    def replay_observables(self) -> None:
        real = _real_meter(self.name)
        for observable in self._observables.values():
            getattr(real, observable._create)(observable._name, **observable._kwargs)

    def create_counter(self, name: str, unit: str = "", description: str = "") -> metrics.Counter:
        return self._sync(_Counter, "create_counter", name, unit=unit, description=description)

    def create_up_down_counter(
        self, name: str, unit: str = "", description: str = ""
    ) -> metrics.UpDownCounter:
        return self._sync(
            _UpDownCounter, "create_up_down_counter", name, unit=unit, description=description
        )

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> metrics.Histogram:
        return self._sync(
            _Histogram,
            "create_histogram",
            name,
            unit=unit,
            description=description,
            explicit_bucket_boundaries_advisory=explicit_bucket_boundaries_advisory,
        )

    def create_observable_counter(
        self,
        name: str,
        callbacks: Sequence[CallbackT] | None = None,
        unit: str = "",
        description: str = "",
    ) -> metrics.ObservableCounter:
        return self._observable(
            "create_observable_counter", name, callbacks, unit=unit, description=description
        )

    def create_observable_gauge(
        self,
        name: str,
        callbacks: Sequence[CallbackT] | None = None,
        unit: str = "",
        description: str = "",
    ) -> metrics.ObservableGauge:
        return self._observable(
            "create_observable_gauge", name, callbacks, unit=unit, description=description
        )

    def create_observable_up_down_counter(
        self,
        name: str,
        callbacks: Sequence[CallbackT] | None = None,
        unit: str = "",
        description: str = "",
    ) -> metrics.ObservableUpDownCounter:
        return self._observable(
            "create_observable_up_down_counter", name, callbacks, unit=unit, description=description
        )


_METERS: dict[str, _KernelMeter] = {}


def meter(name: str) -> metrics.Meter:
    """The meter ``name`` (one per name per process); counts once ``setup`` ran."""
    with _LOCK:
        found = _METERS.get(name)
        if found is None:
            found = _METERS[name] = _KernelMeter(name)
        return found


# -- consumer lag ---------------------------------------------------------------------------
LagReader = Callable[[], Mapping[tuple[str, int], int]]


class LagGauge:
    """A registered lag source; ``close()`` when its consumer closes."""

    def __init__(self, sources: dict[int, tuple[str, LagReader]], key: int) -> None:
        self._sources, self._key = sources, key

    def close(self) -> None:
        with _LOCK:
            self._sources.pop(self._key, None)


_LAG_SOURCES: dict[int, dict[int, tuple[str, LagReader]]] = {}  # id(meter) -> sources
_LAG_IDS = iter(range(1, 1 << 62))


def consumer_lag_gauge(meter: metrics.Meter, group: str, read: LagReader) -> LagGauge:
    """``ungebus.consumer.lag``: ``read()`` gives {(topic, partition): messages behind}.

    ``read`` is called at each collection (Prometheus scrape, OTLP export), so it should
    return values the consumer loop already computed, not ask the broker.
    """
    with _LOCK:
        sources = _LAG_SOURCES.get(id(meter))
        if sources is None:
            sources = _LAG_SOURCES[id(meter)] = {}

            def observe(_options: CallbackOptions) -> Iterable[Observation]:
                with _LOCK:
                    current = list(sources.values())
                for group_name, reader in current:
                    try:
                        lags = dict(reader())
                    except Exception:  # a consumer closing mid-scrape: skip it this time
                        continue
                    for (topic, partition), lag in lags.items():
                        yield Observation(
                            lag,
                            {
                                "messaging.consumer.group.name": group_name,
                                "messaging.destination.name": topic,
                                "messaging.destination.partition.id": str(partition),
                            },
                        )

            meter.create_observable_gauge(
                LAG_METRIC,
                [observe],
                unit="{message}",
                description="messages on the partition not yet consumed by the group",
            )
        key = next(_LAG_IDS)
        sources[key] = (group, read)
        return LagGauge(sources, key)


# -- propagation ----------------------------------------------------------------------------
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


# -- attributes -----------------------------------------------------------------------------
def messaging_attributes(
    operation: str,
    topic: str,
    partition: int | None = None,
    offset: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Messaging semantic conventions for Kafka; never the record key (a pseudonym).

    ``consumer_group=`` is short for ``messaging.consumer.group.name``; other keywords (pass
    dotted names with ``**{...}``) are added as they are, None values left out.
    """
    if operation not in _OPERATIONS:
        raise ValueError(f"operation must be one of {', '.join(_OPERATIONS)}, not {operation!r}")
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": topic,
    }
    if partition is not None:
        attributes["messaging.destination.partition.id"] = str(partition)
    if offset is not None:
        attributes["messaging.kafka.offset"] = int(offset)
    group = extra.pop("consumer_group", None)
    if group is not None:
        attributes["messaging.consumer.group.name"] = group
    for key, value in extra.items():
        if key in _FORBIDDEN_ATTRIBUTES:
            raise ValueError(f"{key} is never recorded: record keys are pseudonyms")
        if value is not None:
            attributes[key] = value
    return attributes


def span_name(operation: str, topic: str) -> str:
    """``send ungebus.inbound.dropout_notice``: the messaging span name convention."""
    return f"{operation} {topic}"
