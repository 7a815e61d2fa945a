"""Start and stop this process's telemetry: the span exporter, the metric readers, the endpoint.

Spans go to OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set, else
to JSON lines in ``settings.traces_dir`` that ``ungebus trace`` reads. Metrics are served for
Prometheus on ``settings.metrics_port`` and pushed by OTLP when an endpoint is set.
"""

from __future__ import annotations

import atexit
import io
import os
from typing import IO, TYPE_CHECKING, Any, cast

from bus.telemetry import meters, state
from bus.telemetry.attributes import NAMESPACE

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from opentelemetry.sdk.metrics import MeterProvider

    from bus.settings import Settings

_ATEXIT = False


class TelemetryError(RuntimeError):
    """Telemetry could not start (e.g. the metrics port is taken)."""


def _sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def _env_int(name: str, default: int) -> int:
    """An SDK setting from the environment (the SDK's own variable), else our default."""
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else default


def _env(*names: str) -> bool:
    return any(os.environ.get(name, "").strip() for name in names)


def setup(service: str, settings: Settings) -> None:
    """Start tracing and metrics for this process as ``service``; later calls do nothing."""
    global _ATEXIT
    with state.LOCK:
        if state.STATE is not None or _sdk_disabled():
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

            from bus.telemetry.span_files import RotatingSpanFile, json_line, remove_stale

            settings.traces_dir.mkdir(parents=True, exist_ok=True)
            remove_stale(settings.traces_dir, settings.traces_keep_days)
            path = settings.traces_dir / f"{service}-{os.getpid()}.jsonl"
            span_file = RotatingSpanFile(path, settings.traces_max_mb * 1024 * 1024)
            exporter = ConsoleSpanExporter(out=cast(IO[str], span_file), formatter=json_line)
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
        state.install(
            state.State(service, tracer_provider, processor, meter_provider, span_file, server)
        )
        meters.replay_observables()
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
    with state.LOCK:
        current = state.clear()
    if current is None:
        return
    current.tracer_provider.shutdown()  # flushes the batch processor
    if current.span_file is not None:
        current.span_file.close()
    if current.meter_provider is not None:
        current.meter_provider.shutdown()
    if current.metrics_server is not None:
        current.metrics_server.shutdown()
        current.metrics_server.server_close()


def recording() -> bool:
    """Whether spans are recorded in this process (``setup`` ran, the SDK is not disabled)."""
    return state.STATE is not None


def flush(timeout_s: float = 10.0) -> bool:
    """Export every finished span (and metric) now; False when the exporters timed out."""
    current = state.STATE
    if current is None:
        return True
    done = current.tracer_provider.force_flush(int(timeout_s * 1000))
    if current.meter_provider is not None:
        done = current.meter_provider.force_flush(int(timeout_s * 1000)) and done
    return done


def service_name() -> str | None:
    """The service ``setup`` ran for, or None when telemetry is not recording."""
    current = state.STATE
    return current.service if current else None


def metrics_address() -> tuple[str, int] | None:
    """(host, port) of the Prometheus endpoint, or None when none is served."""
    current = state.STATE
    if current is None or current.metrics_server is None:
        return None
    host, port = current.metrics_server.server_address[:2]
    return str(host), int(port)
