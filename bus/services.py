"""The ungebus services: one place for their names, command lines, ports, var/ files and
exit codes.

A service's ``name`` is its OpenTelemetry ``service.name`` and its name in
``deploy/compose.yaml`` (generated from this module by ``ungebus deploy compose``), so a trace
in Jaeger, a Prometheus target and a compose service all say the same thing. The settings'
defaults, the dev stack (``ungebus run``), the compose generator and the tests read the ports
and files from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The one-shot ``ungebus topics create`` of a deployment (no ports, exits when done).
TOPICS_TOOL = "ungebus-topics"

# Exit codes a supervisor acts on. A component that exits with EXIT_RESTART asks to be started
# again (EX_TEMPFAIL): the router does so when its liveness watchdog finds it stalled. The
# router exits with EXIT_BATCH_FAILED when it could not deliver a batch's outputs (EX_SOFTWARE).
EXIT_RESTART = 75
EXIT_BATCH_FAILED = 70
# A topic the component writes is gone (deleted under it): starting it again cannot help until
# an operator creates the topic again (EX_CONFIG), so a supervisor does not.
EXIT_TOPIC_GONE = 78

# The local broker (``ungebus local``, ``deploy/local``): the bus's default bootstrap server.
LOCAL_KAFKA_PORT = 9092
LOCAL_KAFKA_CONTROLLER_PORT = 9093

# Where the HTTP services listen by default (UNGEBUS_HTTP_PORT, UNGEBUS_INBOX_PORT).
CONNECTOR_HTTP_PORT = 8080
INBOX_PORT = 8470

# What the processes keep in the var dir (``UNGEBUS_VAR_DIR``), relative to it.
READY_DIR = "ready"
"""``ready/<process>``: written by a process once it is ready (:mod:`bus.ready`)."""
LOGS_DIR = "logs"
"""``logs/<component>.log``: each component's output under ``ungebus run``."""
DROP_DIR = "drop"
"""The file drop that ``ungebus run`` gives the file connector."""
PARTNERS_FILE = "partners.toml"
"""The demo partners, written at first start when no partners file is configured."""
INBOX_SIGN_IN_FILE = "inbox-demo.txt"
"""The demo caseworker's sign-in, written by the inbox, shown by ``ungebus run``."""
INBOX_DATABASE = "inbox.db"
"""The inbox's SQLite database, when no ``UNGEBUS_INBOX_DATABASE_URL`` is set."""
INBOX_USERS_FILE = "inbox-users.json"
"""The inbox's caseworkers, when no ``UNGEBUS_INBOX_USERS_FILE`` is set."""
INBOX_SESSION_KEY = "inbox-session.key"
"""The key that signs the inbox's session cookies on this machine."""
AUDIT_DATABASE = "audit.db"
"""The audit store's SQLite database, when no ``UNGEBUS_AUDIT_DATABASE_URL`` is set."""
PSEUDONYM_KEY = "pseudonym.key"
"""The per-machine pseudonym key, when no ``UNGEBUS_PSEUDONYM_SECRET`` is set."""
MASTER_KEY = "master.key"
"""The per-machine master key that wraps data keys, when no ``UNGEBUS_MASTER_KEY`` is set."""
TRACES_DIR = "traces"
"""Span files (JSON lines) when no OTLP endpoint is set; read by ``ungebus trace``."""
FAUST_DIR = "faust"
"""The faust workers' data dir."""
CRASH_MARKS_DIR = "crash-marks"
"""``crash-marks/<app id>``: the record a worker is handling (``streams.runtime.quarantine``)."""


def ready_file(var_dir: Path, process: str) -> Path:
    """Where ``process`` (``router``, ``tracker``, ``audit-store``...) says it is ready."""
    return var_dir / READY_DIR / process


def log_file(var_dir: Path, component: str) -> Path:
    """Where ``ungebus run`` writes ``component``'s output."""
    return var_dir / LOGS_DIR / f"{component}.log"


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
    ready_processes: tuple[str, ...] = ()
    """Its processes that write a ready file (:func:`ready_file`) once ready: the readiness
    of a service without an HTTP health endpoint."""

    def command_line(self, *arguments: str) -> tuple[str, ...]:
        """``ungebus ...`` with ``arguments`` after the service's own (e.g. the drop folder)."""
        return ("ungebus", *self.command, *arguments)


CONNECTOR_HTTP = Service(
    name="ungebus-connector-http",
    component="connect-http",
    command=("connect", "http"),
    metrics_port=9464,
    http=HttpPort(CONNECTOR_HTTP_PORT, "UNGEBUS_HTTP_PORT", "UNGEBUS_HTTP_HOST"),
    summary="the partner HTTP API (OpenAPI docs at /docs)",
)
CONNECTOR_FILES = Service(
    name="ungebus-connector-files",
    component="connect-files",
    command=("connect", "files"),  # followed by the drop folder: DIR
    metrics_port=9465,
    summary="the partners' file drop: DIR/<partner>/<kind>/*.jsonl|*.csv",
    ready_processes=("connect-files",),
)
CONNECTOR_KAFKA = Service(
    name="ungebus-connector-kafka",
    component="connect-kafka",
    command=("connect", "kafka"),
    metrics_port=9469,
    summary="the Kafka gateway: partner.<name>.events checked and forwarded in order",
    ready_processes=("connect-kafka",),
)
ROUTER = Service(
    name="ungebus-router",
    component="streams",
    command=("streams",),
    metrics_port=9466,
    summary="the router and the handover tracker (two faust workers, one process each)",
    ready_processes=("router", "tracker"),  # each once its tables are recovered
)
INBOX = Service(
    name="ungebus-inbox",
    component="inbox",
    command=("inbox",),
    metrics_port=9467,
    http=HttpPort(INBOX_PORT, "UNGEBUS_INBOX_PORT", "UNGEBUS_INBOX_HOST"),
    summary="one municipality's caseworker inbox (web page, JSON API, Kafka feed)",
)

AUDIT_STORE = Service(
    name="ungebus-audit-store",
    component="audit-store",
    command=("audit-store",),
    metrics_port=9470,  # 9469 belongs to the Kafka gateway (`connect kafka`)
    summary="every routing decision by person, for `ungebus audit`",
    ready_processes=("audit-store",),  # once migrated and its consumer has its partitions
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
