"""The whole bus on this machine: the broker (when it is the local one), topics, components.

``Stack.up`` starts the local broker unless ``KAFKA_BOOTSTRAP_SERVERS`` points elsewhere,
creates the topics (as the admin: the catalogue, the partners' topics, faust's internal ones),
on the secured local broker stores every principal's credential and applies the ACL matrix
(``bus.acls``), and starts every component as a supervised child process under its own
principal (:func:`bus.acls.matrix.service_principal`), each once what it needs is there;
``Stack.down`` stops what ``up`` started, the broker last and only if ``up`` started it. With
``UNGEBUS_LOCAL_KAFKA_BROKERS=3`` the local broker is a three-node cluster
(deploy/local/cluster.py): the stack and its components then use all three nodes' addresses and
create every topic with three replicas.
With ``UNGEBUS_LOCAL_POSTGRES`` (or a local PostgreSQL already running) the inbox and the audit
store keep their data on the local PostgreSQL (:mod:`deploy.local.databases`).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import KafkaException

from bus import services
from bus.acls.cluster import AclError, ClusterAcls
from bus.acls.matrix import TRACKER, service_principal
from bus.acls.matrix import matrix as acl_matrix
from bus.acls.matrix import principals as acl_principals
from bus.demo_partners import load_or_create_partners
from bus.partners import PartnerConfigError
from bus.ports import port_free
from bus.processes import (
    ComponentFailed,
    ComponentSpec,
    ReadyCheck,
    RestartBudget,
    Supervisor,
    files_written,
    http_ok,
)
from bus.topics import ensure_topics
from bus.topics_cli import catalogue
from deploy.local.broker import LocalKafkaError
from deploy.local.cluster import LocalCluster, local_kafka, running_cluster
from deploy.local.databases import database_env, start_databases
from deploy.local.postgres import LocalPostgres, LocalPostgresError
from deploy.local.security import ADMIN, SecurityError, principals, upsert_credentials
from deploy.local.settings import StackSettings

__all__ = ["READY_TIMEOUT_S", "Stack", "StackError", "StackSettings", "child_env"]

READY_TIMEOUT_S = 90.0  # streams needs 5-10 s on an idle machine, more on a busy one
# Quicker clocks for a demo on one machine, unless set: overdue tasks are escalated within
# seconds, and a dropped file is picked up within a second.
DEMO_CLOCKS = {"UNGEBUS_TRACKER_CHECK_INTERVAL_S": "5", "UNGEBUS_FILE_POLL_INTERVAL_S": "1"}


TRACKER_LOGIN = "UNGEBUS_TRACKER_KAFKA_"  # the tracker's own login (streams.cli.role_env)

Login = Callable[[str], dict[str, str]]
"""A principal's ``UNGEBUS_KAFKA_*`` variables (:meth:`LocalKafka.client_env`)."""


def principal_of(settings: StackSettings, service: services.Service) -> str:
    return service_principal(service, settings.inbox_kommunekode)


def who_is_who(settings: StackSettings) -> str:
    """``streams as router (its tracker as tracker), connect-http as connector-http, ...``"""
    said = []
    for service in services.SERVICES:
        said.append(f"{service.component} as {principal_of(settings, service)}")
        if service is services.ROUTER:
            said[-1] += f" (its tracker as {TRACKER})"
    return ", ".join(said)


class StackError(RuntimeError):
    """The bus could not be started; the message says what to do or shows the failing log."""


def ready_check(settings: StackSettings, service: services.Service, since: float) -> ReadyCheck:
    """A component is ready when its health endpoint answers, or when each of its processes
    has written its ready file since ``since`` (never by what its log says)."""
    if service is services.CONNECTOR_HTTP:
        return http_ok(f"{settings.api_url}/healthz")
    if service is services.INBOX:
        return http_ok(f"{settings.inbox_url}/healthz")
    ready = [services.ready_file(settings.var_dir, p) for p in service.ready_processes]
    return files_written(ready, after=since)


def component_specs(settings: StackSettings, login: Login | None = None) -> list[ComponentSpec]:
    """The components; with ``login``, each logs in to Kafka as its own principal."""
    since = time.time()

    def spec(service: services.Service, *args: str, after: str | None = None) -> ComponentSpec:
        env: tuple[tuple[str, str], ...] = ()
        if login is not None:
            env += tuple(login(principal_of(settings, service)).items())
            if service is services.ROUTER:
                tracker_login = login(TRACKER).items()
                env += tuple((TRACKER_LOGIN + k.removeprefix("UNGEBUS_KAFKA_"), v)
                             for k, v in tracker_login)  # fmt: skip
        if (port := settings.component_metrics_port(service.component)) is not None:
            env += (("UNGEBUS_METRICS_PORT", str(port)),)
            if service is services.ROUTER:  # and the tracker's, beside the others
                tracker = settings.component_metrics_port("tracker")
                env += (("UNGEBUS_TRACKER_METRICS_PORT", str(tracker)),)
        return ComponentSpec(
            service.component,
            (*service.command, *args),
            ready_check(settings, service, since),
            after=after,
            env=env,
        )

    http = services.CONNECTOR_HTTP.component
    return [
        spec(services.ROUTER),  # two workers: the router and the handover tracker
        spec(services.CONNECTOR_HTTP),
        # After the HTTP API: both write the demo partners at first start, one must go first.
        spec(services.CONNECTOR_FILES, str(settings.drop_dir), after=http),
        spec(services.CONNECTOR_KAFKA, after=http),
        spec(services.INBOX),
        spec(services.AUDIT_STORE),
    ]


def child_env(settings: StackSettings, kafka: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every component: ours, with where Kafka and var/ are made explicit,
    and ``kafka`` (the ``UNGEBUS_KAFKA_*`` login on the local broker) over ours."""
    env = {**DEMO_CLOCKS, **os.environ, **(kafka or {})}
    if kafka:  # a password in our environment would win over the file's
        env.pop("UNGEBUS_KAFKA_SASL_PASSWORD", None)
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


def login_as(settings: StackSettings, env: dict[str, str]) -> StackSettings:
    """``settings`` with the Kafka login of ``env`` (``UNGEBUS_KAFKA_*`` variables)."""
    if not env:
        return settings
    fields: dict[str, object] = {
        name.removeprefix("UNGEBUS_").lower(): value for name, value in env.items()
    }
    fields["kafka_sasl_password"] = None  # the file's
    return type(settings)(**{**settings.model_dump(exclude_unset=True), **fields})


class Stack:
    def __init__(self, settings: StackSettings, echo: Callable[[str], None]) -> None:
        self.echo = echo
        # A cluster that runs (``ungebus local up --brokers 3``) is used whatever the setting.
        self.broker = running_cluster(settings) or local_kafka(settings)
        first_node = self.broker.bootstrap_servers.split(",")[0]
        self.local = settings.kafka_bootstrap_servers in (self.broker.bootstrap_servers, first_node)
        if self.local and isinstance(self.broker, LocalCluster):  # any node will do, not one
            settings = settings.model_copy(
                update={"kafka_bootstrap_servers": self.broker.bootstrap_servers}
            )
        # On the local broker every client of the stack (its own, the components') logs in
        # with the broker home's credentials (on a cluster, and creates topics with its
        # replication factor); elsewhere with the settings' own.
        self.kafka_env = self.broker.client_env(ADMIN) if self.local else {}
        self.settings = login_as(settings, self.kafka_env)
        """The settings of the stack's own clients (the topic watcher's, the demo's)."""
        self.started_broker = False
        self.postgres = LocalPostgres.from_settings(settings)
        # The stores on the local PostgreSQL when asked, or when one runs (`local up --postgres`).
        self.use_postgres = settings.local_postgres or self.postgres.running_pid() is not None
        self.started_postgres = False
        self.supervisor = Supervisor(
            settings.log_dir,
            child_env(settings, self.kafka_env),
            cwd=Path.cwd(),
            budget=lambda: RestartBudget(settings.restart_limit, settings.restart_window_s),
            on_restart=echo,
        )

    def up(self, stop: threading.Event, ready_timeout_s: float) -> None:
        """Broker, topics, components; :class:`StackError` when something does not come up."""
        self._broker_up()
        if stop.is_set():
            return
        self._say_how_secured()
        self._postgres_up()
        partners = self._partners()
        self._ensure_topics()
        login = self._logins(partners)
        self._check_ports()
        self.settings.drop_dir.mkdir(parents=True, exist_ok=True)
        self.echo(f"Starting the components (logs in {self.settings.log_dir})...")
        try:
            self.supervisor.start_all(
                component_specs(self.settings, login), ready_timeout_s, stop, self.echo
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
        if self.started_postgres:
            self.postgres.down(echo=self.echo)
        if self.started_broker:
            self.broker.down(echo=self.echo)

    def _broker_up(self) -> None:
        if not self.local:
            self.echo(f"Using the Kafka broker at {self.settings.kafka_bootstrap_servers}")
            return
        try:
            self.started_broker = self.broker.up(echo=self.echo)
        except LocalKafkaError as exc:
            raise StackError(str(exc)) from exc

    def _postgres_up(self) -> None:
        """The local PostgreSQL and the stores' databases; the inbox and the audit store get
        their URLs. Without it they keep SQLite files in var/."""
        if not self.use_postgres:
            return
        try:
            self.started_postgres = start_databases(self.postgres, self.echo)
        except LocalPostgresError as exc:
            raise StackError(str(exc)) from exc
        self.supervisor.env.update(database_env(self.postgres))

    def _say_how_secured(self) -> None:
        if not self.local:
            return
        if not self.broker.secure:
            self.echo(
                "WARNING: UNGEBUS_KAFKA_SECURITY=plaintext: the local Kafka broker is OPEN: no "
                "authentication, no ACLs; anyone who reaches "
                f"{self.broker.bootstrap_servers} reads every municipality's tasks (CPR numbers "
                "included) and writes any topic"
            )
            return
        if not self.started_broker:  # else its start said so
            self.echo(f"Kafka is {self.broker.security_summary}")

    def _partners(self) -> list[str]:
        """The partners' names; a local run without a partners file gets the demo partners,
        written here (before the components, which read them) with their tokens."""
        try:
            registry, tokens = load_or_create_partners(self.settings)
        except PartnerConfigError as exc:
            raise StackError(str(exc)) from exc
        if tokens is not None:
            self.echo(f"Demo partners written to {self.settings.resolved_partners_file()}; "
                      f"their bearer tokens are in {tokens}")  # fmt: skip
        return sorted(registry.by_name)

    def _logins(self, partners: list[str]) -> Login | None:
        """On the secured local broker: every principal's credential stored, the ACL matrix
        applied (as the admin; both idempotent), and each component's own login. Elsewhere
        (another Kafka, or the open local broker) every component uses the settings' login."""
        if not (self.local and self.broker.secure):
            return None
        settings = self.settings
        try:
            upsert_credentials(
                self.broker.client_config(ADMIN), self.broker.security, principals(partners)[1:]
            )
            wanted = acl_matrix(settings.topics, partners)
            changes = ClusterAcls(settings.kafka_config()).apply(wanted)
        except (SecurityError, AclError) as exc:
            raise StackError(f"{exc} (on {settings.kafka_bootstrap_servers})") from exc
        self.echo(
            f"ACLs applied: {len(wanted)} for {len(acl_principals(wanted))} principals "
            f"({len(changes.missing)} created, {len(changes.unexpected)} deleted); each component "
            f"logs in as its own: {who_is_who(settings)}"
        )
        return self.broker.client_env

    def _ensure_topics(self) -> None:
        """Every topic, as the admin: on a secured cluster no component may create one (but
        faust's own, under its prefix)."""
        from streams.runtime.app import internal_topics  # imports faust: only here

        settings = self.settings
        try:
            internal = [
                dataclasses.replace(spec, replication_factor=settings.replication_factor)
                for spec in internal_topics(settings)
            ]
            specs = [*catalogue(settings), *internal]
            ensure_topics(settings.kafka_config(), specs)
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
        for component in [*(service.component for service in services.SERVICES), "tracker"]:
            if (port := settings.component_metrics_port(component)) is not None:
                wanted.append((settings.metrics_host, port, "UNGEBUS_METRICS_PORT_BASE"))
        for host, port, variable in wanted:
            if not port_free(port, host):
                raise StackError(
                    f"port {port} on {host} is in use by another process; stop it, or set "
                    f"{variable} to another port"
                )
