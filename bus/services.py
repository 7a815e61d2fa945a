"""The ungebus services: one place for their names, command lines and ports.

A service's ``name`` is its OpenTelemetry ``service.name`` and its name in
``deploy/compose.yaml`` (generated from this module by ``ungebus deploy compose``), so a trace
in Jaeger, a Prometheus target and a compose service all say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

# The one-shot ``ungebus topics create`` of a deployment (no ports, exits when done).
TOPICS_TOOL = "ungebus-topics"


@dataclass(frozen=True)
class HttpPort:
    """A service's HTTP listener and the settings that move it."""

    port: int
    port_variable: str
    host_variable: str
    health_path: str = "/healthz"


@dataclass(frozen=True)
class Service:
    name: str
    """OpenTelemetry ``service.name``; also the compose service name."""
    component: str
    """The component's name in ``ungebus run`` (its log is ``var/logs/<component>.log``)."""
    command: tuple[str, ...]
    """The arguments after ``ungebus``."""
    metrics_port: int
    """Its Prometheus endpoint (``UNGEBUS_METRICS_PORT``): one port each, so that all of them
    can also run side by side on one machine."""
    http: HttpPort | None = None
    summary: str = ""
    ready_file: str | None = None
    """A file in its var dir that it writes once ready (and removes at start and exit)."""

    def command_line(self, *arguments: str) -> tuple[str, ...]:
        """``ungebus ...`` with ``arguments`` after the service's own (e.g. the drop folder)."""
        return ("ungebus", *self.command, *arguments)


CONNECTOR_HTTP = Service(
    name="ungebus-connector-http",
    component="connect-http",
    command=("connect", "http"),
    metrics_port=9464,
    http=HttpPort(8080, "UNGEBUS_HTTP_PORT", "UNGEBUS_HTTP_HOST"),
    summary="the partner HTTP API (OpenAPI docs at /docs)",
)
CONNECTOR_FILES = Service(
    name="ungebus-connector-files",
    component="connect-files",
    command=("connect", "files"),  # followed by the drop folder: DIR
    metrics_port=9465,
    summary="the partners' file drop: DIR/<partner>/<kind>/*.jsonl|*.csv",
)
CONNECTOR_KAFKA = Service(
    name="ungebus-connector-kafka",
    component="connect-kafka",
    command=("connect", "kafka"),
    metrics_port=9469,
    summary="the Kafka gateway: partner.<name>.events checked and forwarded in order",
)
ROUTER = Service(
    name="ungebus-router",
    component="streams",
    command=("streams",),
    metrics_port=9466,
    summary="the router and the handover tracker (two faust workers, one process each)",
)
INBOX = Service(
    name="ungebus-inbox",
    component="inbox",
    command=("inbox",),
    metrics_port=9467,
    http=HttpPort(8470, "UNGEBUS_INBOX_PORT", "UNGEBUS_INBOX_HOST"),
    summary="one municipality's caseworker inbox (web page, JSON API, Kafka feed)",
)

AUDIT_STORE = Service(
    name="ungebus-audit-store",
    component="audit-store",
    command=("audit-store",),
    metrics_port=9470,  # 9469 belongs to the Kafka gateway (`connect kafka`)
    summary="every routing decision by person, for `ungebus audit`",
    ready_file="audit-store.ready",  # consumers.audit.settings.READY_FILE (a test checks)
)

SERVICES: tuple[Service, ...] = (
    CONNECTOR_HTTP,
    CONNECTOR_FILES,
    CONNECTOR_KAFKA,
    ROUTER,
    INBOX,
    AUDIT_STORE,
)
# The router's second process, the handover tracker, serves its metrics here
# (UNGEBUS_TRACKER_METRICS_PORT).
TRACKER_METRICS_PORT = 9468


def by_component(component: str) -> Service:
    """The service that ``ungebus run`` calls ``component`` (``streams``, ``inbox``, ...)."""
    for service in SERVICES:
        if service.component == component:
            return service
    known = ", ".join(s.component for s in SERVICES)
    raise KeyError(f"no ungebus service is component {component!r}; known: {known}")
