"""``ungebus connect http`` and ``ungebus connect files DIR``: the partner connectors."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import click

from bus import services, telemetry
from bus.access import require_access, require_topics
from bus.demo_partners import load_or_create_partners as load_or_create
from bus.partners import PartnerConfigError, PartnerRegistry
from bus.ready import ReadyFile
from connectors.settings import ConnectorSettings


def load_or_create_partners(settings: ConnectorSettings) -> PartnerRegistry:
    """The configured partners file; for a local run without one, demo partners in var/."""
    try:
        partners, tokens = load_or_create(settings)
    except PartnerConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if tokens is not None:
        click.echo(
            f"Demo partners written to {settings.resolved_partners_file()}; "
            f"their bearer tokens are in {tokens}"
        )
    return partners


def start_telemetry(service: str, settings: ConnectorSettings) -> None:
    try:
        telemetry.setup(service, settings)
    except telemetry.TelemetryError as exc:
        raise click.ClickException(str(exc)) from exc
    if (address := telemetry.metrics_address()) is not None:
        click.echo(f"Metrics for Prometheus: http://{address[0]}:{address[1]}/metrics")


_metrics_port = click.option(
    "--metrics-port", type=int, help="serve Prometheus metrics here [UNGEBUS_METRICS_PORT, none]"
)


@click.group()
def connect() -> None:
    """Partner connectors: the HTTP API and the file drop."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")


@connect.command("http")
@click.option("--host", help="listen address [UNGEBUS_HTTP_HOST, 127.0.0.1]")
@click.option("--port", type=int, help="listen port [UNGEBUS_HTTP_PORT, 8080]")
@_metrics_port
def http(host: str | None, port: int | None, metrics_port: int | None) -> None:
    """Serve the partner HTTP API (OpenAPI at /openapi.json, docs at /docs)."""
    import uvicorn

    from connectors.http_api import create_app
    from connectors.server import uvicorn_config

    given: dict[str, Any] = {"http_host": host, "http_port": port, "metrics_port": metrics_port}
    overrides = {name: value for name, value in given.items() if value is not None}
    settings = ConnectorSettings(**overrides)
    require_access(settings)
    partners = load_or_create_partners(settings)
    click.echo(f"{len(partners)} partners from {settings.resolved_partners_file()}")
    scheme = "https" if settings.tls_certfile else "http"
    click.echo(f"Partner API docs: {scheme}://{settings.http_host}:{settings.http_port}/docs")
    start_telemetry(services.CONNECTOR_HTTP.name, settings)
    try:
        uvicorn.Server(uvicorn_config(create_app(settings, partners), settings)).run()
    finally:
        telemetry.shutdown()


@connect.command("files")
@click.argument(
    "directory", type=click.Path(file_okay=False, dir_okay=True, exists=True, path_type=Path)
)
@click.option("--once", is_flag=True, help="process the files that are there, then exit")
@_metrics_port
def files(directory: Path, once: bool, metrics_port: int | None) -> None:
    """Publish partners' exports dropped in DIRECTORY/<partner>/<kind>/ (CSV or JSON Lines)."""
    from bus.keystore import keyring_for
    from connectors.files import FileDrop
    from connectors.ingest import connector_topics
    from connectors.publisher import KafkaPublisher

    overrides: dict[str, Any] = {"metrics_port": metrics_port} if metrics_port is not None else {}
    settings = ConnectorSettings(**overrides)
    require_access(settings)
    partners = load_or_create_partners(settings)
    require_topics(settings, connector_topics(settings.topics, settings.replication_factor))
    start_telemetry(services.CONNECTOR_FILES.name, settings)
    keyring = keyring_for(settings)
    publisher = KafkaPublisher(settings.connector_producer_config())
    stop = threading.Event()
    if not once:
        # Set the event from a thread: a signal handler that calls Event.set() while the main
        # thread waits in Event.wait() can deadlock on the event's own lock.
        def request_stop(*_: object) -> None:
            threading.Thread(target=stop.set, name="stop", daemon=True).start()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        click.echo(f"Watching {directory} every {settings.file_poll_interval_s:g} s; Ctrl-C stops")
        ReadyFile.of_this_process(
            services.ready_file(settings.var_dir, services.CONNECTOR_FILES.component)
        ).mark()
    try:
        failed = FileDrop(directory, settings, partners, publisher, keyring).run(
            once=once, stop=stop, echo=click.echo
        )
    finally:
        publisher.close(settings.ack_timeout_s)
        keyring.close()
        telemetry.shutdown()
    if failed:
        raise click.ClickException(f"{failed} files could not be published; they were left")


@connect.command("kafka")
@_metrics_port
def kafka(metrics_port: int | None) -> None:
    """Forward what partners publish to Kafka themselves (partner.<name>.events), checked."""
    from bus.keystore import keyring_for
    from connectors.gateway import Gateway
    from connectors.ingest import connector_topics

    overrides: dict[str, Any] = {"metrics_port": metrics_port} if metrics_port is not None else {}
    settings = ConnectorSettings(**overrides)
    require_access(settings)
    partners = load_or_create_partners(settings)
    topics = settings.topics
    require_topics(
        settings,
        [
            *connector_topics(topics, settings.replication_factor),
            *topics.partner_catalogue(partners.by_name, settings.replication_factor),
            *[s for s in topics.catalogue() if s.name == topics.deadletter],
        ],
    )
    start_telemetry(services.CONNECTOR_KAFKA.name, settings)
    stop = threading.Event()

    def request_stop(*_: object) -> None:
        threading.Thread(target=stop.set, name="stop", daemon=True).start()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    keyring = keyring_for(settings)
    gateway = Gateway(settings, partners, keyring)
    ready = ReadyFile.of_this_process(
        services.ready_file(settings.var_dir, services.CONNECTOR_KAFKA.component)
    )

    def on_ready() -> None:
        click.echo(
            f"Forwarding {len(gateway.topics)} partner topics to {topics.inbound_events}; "
            "Ctrl-C stops"
        )
        ready.mark()

    try:
        gateway.run(stop, on_ready=on_ready)
    finally:
        keyring.close()
        telemetry.shutdown()
    click.echo(f"Stopped: {gateway.forwarded} forwarded, {gateway.refused} refused")
