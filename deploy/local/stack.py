"""The whole bus on this machine: the broker (when it is the local one), topics, components.

``Stack.up`` starts the local broker unless ``KAFKA_BOOTSTRAP_SERVERS`` points elsewhere,
creates the topic catalogue, and starts every component as a supervised child process, each
once what it needs is there; ``Stack.down`` stops what ``up`` started, the broker last and only
if ``up`` started it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import KafkaException
from pydantic import Field

from bus.processes import (
    MAX_RESTARTS,
    RESTART_WINDOW_S,
    ComponentFailed,
    ComponentSpec,
    RestartBudget,
    Supervisor,
    file_written,
    http_ok,
    log_says,
)
from bus.services import AUDIT_STORE, SERVICES, TRACKER_METRICS_PORT, by_component
from bus.settings import Settings
from bus.topics import ensure_topics
from deploy.local.broker import LocalKafka, LocalKafkaError

READY_TIMEOUT_S = 90.0  # streams needs 5-10 s on an idle machine, more on a busy one
# faust's worker logs this once its partitions are assigned and its tables recovered.
STREAMS_READY = "[^Worker]: Ready"
# `ungebus connect files` prints this once its topics exist and it polls the folder.
FILES_READY = "Watching "
# `ungebus connect kafka` prints this once it has subscribed to the partners' topics.
GATEWAY_READY = "Forwarding "
# Quicker clocks for a demo on one machine, unless set: overdue tasks are escalated within
# seconds, and a dropped file is picked up within a second.
DEMO_CLOCKS = {"UNGEBUS_TRACKER_CHECK_INTERVAL_S": "5", "UNGEBUS_FILE_POLL_INTERVAL_S": "1"}


DEFAULT_METRICS_BASE = 9464
# Consecutive ports from the base that the components' metrics take (one each, the tracker too).
METRICS_PORT_COUNT = (
    max(TRACKER_METRICS_PORT, *(s.metrics_port for s in SERVICES)) - DEFAULT_METRICS_BASE + 1
)


class StackError(RuntimeError):
    """The bus could not be started; the message says what to do or shows the failing log."""


class StackSettings(Settings):
    """The components' own settings that ``run`` needs to know (the same variables)."""

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    inbox_host: str = "127.0.0.1"
    inbox_port: int = 8470
    inbox_kommunekode: str = "161"
    # Each component serves Prometheus metrics on its own port: bus.services' ports moved by
    # this base (9464: the connectors on 9464-9465, the router on 9466, the inbox on 9467, the
    # handover tracker on 9468, the Kafka gateway on 9469, the audit store on 9470).
    metrics_port_base: int | None = Field(
        default=DEFAULT_METRICS_BASE, ge=1, le=65536 - METRICS_PORT_COUNT
    )
    # A failed component is started again, at most this often in this window (bus.processes).
    restart_limit: int = Field(default=MAX_RESTARTS, ge=0)
    restart_window_s: float = Field(default=RESTART_WINDOW_S, gt=0)

    def component_metrics_port(self, component: str) -> int | None:
        """Where ``component`` serves its metrics, or None when none is served."""
        if self.metrics_port_base is None:
            return None
        default = (
            TRACKER_METRICS_PORT if component == "tracker" else by_component(component).metrics_port
        )
        return default - DEFAULT_METRICS_BASE + self.metrics_port_base

    @property
    def api_url(self) -> str:
        return f"http://{self.http_host}:{self.http_port}"

    @property
    def inbox_url(self) -> str:
        return f"http://{self.inbox_host}:{self.inbox_port}"

    @property
    def drop_dir(self) -> Path:
        return self.var_dir / "drop"

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "logs"

    @property
    def audit_ready_file(self) -> Path:
        assert AUDIT_STORE.ready_file is not None
        return self.var_dir / AUDIT_STORE.ready_file


def component_specs(settings: StackSettings) -> list[ComponentSpec]:
    def own(component: str) -> tuple[tuple[str, str], ...]:
        port = settings.component_metrics_port(component)
        if port is None:
            return ()
        if component == "streams":  # and the tracker's, beside the others
            tracker = settings.component_metrics_port("tracker")
            return (("UNGEBUS_METRICS_PORT", str(port)),
                    ("UNGEBUS_TRACKER_METRICS_PORT", str(tracker)))  # fmt: skip
        return (("UNGEBUS_METRICS_PORT", str(port)),)

    return [
        # Two workers: the router and the handover tracker.
        ComponentSpec("streams", ("streams",), log_says(STREAMS_READY, 2), env=own("streams")),
        ComponentSpec(
            "connect-http",
            ("connect", "http"),
            http_ok(f"{settings.api_url}/healthz"),
            env=own("connect-http"),
        ),
        # After the HTTP API: both write the demo partners at first start, one must go first.
        ComponentSpec(
            "connect-files",
            ("connect", "files", str(settings.drop_dir)),
            log_says(FILES_READY),
            after="connect-http",
            env=own("connect-files"),
        ),
        ComponentSpec(
            "connect-kafka",
            ("connect", "kafka"),
            log_says(GATEWAY_READY),
            after="connect-http",
            env=own("connect-kafka"),
        ),
        ComponentSpec(
            "inbox", ("inbox",), http_ok(f"{settings.inbox_url}/healthz"), env=own("inbox")
        ),
        ComponentSpec(
            AUDIT_STORE.component,
            AUDIT_STORE.command,
            file_written(settings.audit_ready_file, after=time.time()),
            env=own(AUDIT_STORE.component),
        ),
    ]


def child_env(settings: StackSettings) -> dict[str, str]:
    """The environment of every component: ours, with where Kafka and var/ are made explicit."""
    env = {**DEMO_CLOCKS, **os.environ}
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "UNGEBUS_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "UNGEBUS_TOPIC_PREFIX": settings.topic_prefix,
            "UNGEBUS_VAR_DIR": str(settings.var_dir),
            "PYTHONUNBUFFERED": "1",  # logs are read while the components run
        }
    )
    return env


class Stack:
    def __init__(self, settings: StackSettings, echo: Callable[[str], None]) -> None:
        self.settings = settings
        self.echo = echo
        self.broker = LocalKafka.from_settings(settings)
        self.started_broker = False
        self.supervisor = Supervisor(
            settings.log_dir,
            child_env(settings),
            cwd=Path.cwd(),
            budget=lambda: RestartBudget(settings.restart_limit, settings.restart_window_s),
            on_restart=echo,
        )

    def up(self, stop: threading.Event, ready_timeout_s: float) -> None:
        """Broker, topics, components; :class:`StackError` when something does not come up."""
        self._broker_up()
        if stop.is_set():
            return
        self._ensure_topics()
        self._check_ports()
        self.settings.drop_dir.mkdir(parents=True, exist_ok=True)
        self.echo(f"Starting the components (logs in {self.settings.log_dir})...")
        try:
            self.supervisor.start_all(
                component_specs(self.settings), ready_timeout_s, stop, self.echo
            )
        except ComponentFailed as exc:
            raise StackError(str(exc)) from exc

    def first_dead(self) -> str | None:
        """A report on a component that exited on its own (name, code, end of log), if any."""
        dead = self.supervisor.first_dead()
        return str(dead.failure(dead.how_it_ended())) if dead else None

    def down(self, grace_s: float = 20.0) -> None:
        if self.supervisor.components:
            self.echo("Stopping the components...")
            self.supervisor.stop_all(grace_s, self.echo)
        if self.started_broker:
            self.broker.down(echo=self.echo)

    def _broker_up(self) -> None:
        bootstrap = self.settings.kafka_bootstrap_servers
        if bootstrap != self.broker.bootstrap_servers:
            self.echo(f"Using the Kafka broker at {bootstrap}")
            return
        try:
            self.started_broker = self.broker.up(echo=self.echo)
        except LocalKafkaError as exc:
            raise StackError(str(exc)) from exc

    def _ensure_topics(self) -> None:
        settings = self.settings
        try:
            ensure_topics(settings.kafka_config(), settings.topics.catalogue())
        except (KafkaException, TimeoutError) as exc:
            raise StackError(
                f"Kafka at {settings.kafka_bootstrap_servers} did not answer ({exc}); is it "
                "running? `ungebus local status` tells for the local broker"
            ) from exc

    def _check_ports(self) -> None:
        """A taken port would make a component fail, or worse, another server look ready."""
        settings = self.settings
        wanted = [
            (settings.http_host, settings.http_port, "UNGEBUS_HTTP_PORT"),
            (settings.inbox_host, settings.inbox_port, "UNGEBUS_INBOX_PORT"),
        ]
        components = (
            "connect-http",
            "connect-files",
            "connect-kafka",
            "streams",
            "tracker",
            "inbox",
            "audit-store",
        )
        for component in components:
            if (port := settings.component_metrics_port(component)) is not None:
                wanted.append((settings.metrics_host, port, "UNGEBUS_METRICS_PORT_BASE"))
        for host, port, variable in wanted:
            if not _port_free(host, port):
                raise StackError(
                    f"port {port} on {host} is in use by another process; stop it, or set "
                    f"{variable} to another port"
                )


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
