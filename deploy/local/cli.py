"""``ungebus local up|status|down``: the embedded single-node Kafka broker."""

from __future__ import annotations

import click

from deploy.local.broker import LocalKafka, LocalKafkaError, fetch_jars
from deploy.local.settings import LocalKafkaSettings


def _broker() -> LocalKafka:
    return LocalKafka.from_settings(LocalKafkaSettings())


@click.group()
def local() -> None:
    """Run a real single-node Apache Kafka broker (KRaft) on this machine."""


@local.command()
def up() -> None:
    """Fetch the broker jars if needed, format storage once, start the broker, wait until ready."""
    try:
        _broker().up(echo=click.echo)
    except LocalKafkaError as exc:
        raise click.ClickException(str(exc)) from exc


@local.command()
def status() -> None:
    """Say whether the local broker runs, and where."""
    broker = _broker()
    click.echo(broker.status())
    if broker.running_pid() is None:
        raise SystemExit(3)


@local.command()
def down() -> None:
    """Stop the local broker cleanly (its data is kept)."""
    _broker().down(echo=click.echo)


@local.command()
@click.confirmation_option(prompt="Delete the local broker's topics and logs?")
def wipe() -> None:
    """Delete the local broker's data and logs (it must be stopped)."""
    try:
        _broker().wipe()
    except LocalKafkaError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("Local Kafka data removed.")


@local.command()
def fetch() -> None:
    """Download the Kafka broker jars from Maven Central (once; later calls do nothing)."""
    try:
        lib = fetch_jars(echo=click.echo)
    except LocalKafkaError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Kafka broker jars ready in {lib}")
