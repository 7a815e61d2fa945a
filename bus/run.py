"""``ungebus run``: the whole bus on this machine, on the embedded local broker.

It starts the local Kafka broker (unless ``KAFKA_BOOTSTRAP_SERVERS`` points elsewhere), then
every component that exists, and stops what it started on Ctrl-C.
"""

from __future__ import annotations

import signal
import threading

import click

from bus.local_kafka import LocalKafka, LocalKafkaError
from bus.settings import load_settings


@click.command()
def run() -> None:
    """Run the bus on this machine until Ctrl-C."""
    settings = load_settings()
    broker = LocalKafka.from_settings(settings)
    started_broker = False
    if settings.kafka_bootstrap_servers == broker.bootstrap_servers:
        try:
            started_broker = broker.up(echo=click.echo)
        except LocalKafkaError as exc:
            raise click.ClickException(str(exc)) from exc
    else:
        click.echo(f"Using the Kafka broker at {settings.kafka_bootstrap_servers}")

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(
        "ungebus is running: the broker is up. Components (connectors, router, inbox) join "
        "here as they are built. Press Ctrl-C to stop."
    )
    stop.wait()
    click.echo("Stopping...")
    if started_broker:
        broker.down(echo=click.echo)
