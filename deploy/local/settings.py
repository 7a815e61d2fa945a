"""The dev stack's settings: the local broker's, and what ``ungebus run``/``demo`` must know.

The components' own settings (the router's, the tracker's, the connectors', the inbox's) reach
the components through the environment ``ungebus run`` passes on: the stack does not import
them. It declares only the few it needs itself (where the HTTP API and the inbox listen, to wait
for them and to print their addresses), with the components' defaults from
:mod:`bus.services`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from bus import services
from bus.processes import MAX_RESTARTS, RESTART_WINDOW_S
from bus.settings import PROJECT_ROOT, Settings

LOCAL_POSTGRES_PORT = 5433  # beside a system PostgreSQL's 5432
DEFAULT_METRICS_BASE = min(s.metrics_port for s in services.SERVICES)
# Consecutive ports from the base that the components' metrics take (one each, the tracker too).
METRICS_PORT_COUNT = (
    max(services.TRACKER_METRICS_PORT, *(s.metrics_port for s in services.SERVICES))
    - DEFAULT_METRICS_BASE
    + 1
)


class LocalKafkaSettings(Settings):
    """The local broker, or local cluster (``ungebus local``, and ``ungebus run`` when
    ``KAFKA_BOOTSTRAP_SERVERS`` is left at its default)."""

    local_kafka_port: int = Field(default=services.LOCAL_KAFKA_PORT, ge=1, le=65535)
    local_kafka_controller_port: int = Field(
        default=services.LOCAL_KAFKA_CONTROLLER_PORT, ge=1, le=65535
    )
    local_kafka_home: Path = PROJECT_ROOT / "deploy" / "local" / ".kafka"
    local_kafka_start_timeout_s: float = Field(default=90.0, gt=0)
    local_kafka_heap: str = "768m"
    # ``ungebus local up --brokers 3``: a local KRaft cluster of this many nodes (each broker
    # and controller; deploy/local/cluster.py), each on the ports after the previous one's
    # (9092/9093, 9094/9095, 9096/9097), with this heap each; 1: the single broker.
    local_kafka_brokers: int = Field(default=1, ge=1, le=5)
    local_kafka_node_heap: str = "384m"
    # The local broker is secured (SASL_SSL, SCRAM-SHA-512, ACLs) unless this says
    # ``plaintext``: an open broker, for pointing ungebus at a dev cluster set up that way.
    kafka_security: Literal["secured", "plaintext"] = "secured"


class LocalPostgresSettings(Settings):
    """The local PostgreSQL server (``ungebus local up --postgres``; ``ungebus run``/``demo``
    keep the inbox's and the audit store's data there when ``local_postgres`` is on, or when
    one runs already)."""

    local_postgres: bool = False
    local_postgres_port: int = Field(default=LOCAL_POSTGRES_PORT, ge=1, le=65535)
    local_postgres_home: Path = PROJECT_ROOT / "deploy" / "local" / ".postgres"
    # The folder of initdb, postgres and pg_ctl; unset: /usr/lib/postgresql/<major>/bin, PATH.
    local_postgres_bin: Path | None = None
    local_postgres_start_timeout_s: float = Field(default=60.0, gt=0)


class StackSettings(LocalKafkaSettings, LocalPostgresSettings):
    """``ungebus run``/``demo``: the components' addresses it waits for, and its supervisor's."""

    http_host: str = "127.0.0.1"
    http_port: int = services.CONNECTOR_HTTP_PORT
    inbox_host: str = "127.0.0.1"
    inbox_port: int = services.INBOX_PORT
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
        """Where ``component`` (or ``tracker``) serves its metrics, or None when none is served."""
        if self.metrics_port_base is None:
            return None
        default = (
            services.TRACKER_METRICS_PORT
            if component == "tracker"
            else services.by_component(component).metrics_port
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
        return self.var_dir / services.DROP_DIR

    @property
    def log_dir(self) -> Path:
        return self.var_dir / services.LOGS_DIR
