"""``ungebus topics``: the topic catalogue, and creating it on the configured Kafka.

``ungebus topics create`` is what a deployment runs once, as the admin, before the components
start (the ``topics`` service of ``deploy/compose.yaml``; ``ungebus run`` does it at start):
on a secured cluster only the admin may create topics (``bus/acls``), the components merely
find theirs. It includes the partners' ``partner.<name>.events`` topics (the partners file, or
the local run's demo partners), and sets the retention of existing topics whose
``retention.ms`` is not their data class's in the retention table (``streams/retention.toml``);
``ungebus topics check`` only lists those. Running it twice changes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from bus.settings import Settings, load_settings
from bus.topics import TopicSpec

if TYPE_CHECKING:
    from bus.topic_retention import RetentionChange


def catalogue(settings: Settings) -> list[TopicSpec]:
    """Every topic of the bus, with the deployment's prefix and replication factor: the
    catalogue's, and each partner's direct-publishing topic."""
    from bus.acls.cli import partner_names

    topics = settings.topics
    return [
        dataclasses.replace(spec, replication_factor=settings.replication_factor)
        for spec in [*topics.catalogue(), *topics.partner_catalogue(partner_names(settings))]
    ]


@click.group()
def topics() -> None:
    """The bus's topics: list them, or create them on the configured Kafka."""


@topics.command("list")
def list_topics() -> None:
    """Print every topic of the bus with partitions, retention and data class (no Kafka)."""
    from bus.retention import default_retention

    settings = load_settings()
    table = default_retention()
    for spec in catalogue(settings):
        retention = spec.config.get("retention.ms", "default")
        kept = table.for_topic(spec.name, settings.topic_prefix)
        click.echo(
            f"{spec.name}\tpartitions={spec.partitions}\tretention.ms={retention}"
            f"\t{kept.retention} ({kept.name})"
        )


@topics.command("retention")
def retention() -> None:
    """Print the retention table (streams/retention.toml) as the README shows it."""
    from bus.retention import default_retention, markdown_table

    click.echo(markdown_table(default_retention()), nl=False)


@topics.command("create")
def create() -> None:
    """Create the topics that do not exist yet and set the retention of those whose
    retention.ms differs from the retention table; print what changed. Running it twice
    changes nothing."""
    from bus.topic_retention import set_retention
    from bus.topics import ensure_topics

    settings = load_settings()
    specs = catalogue(settings)
    with _kafka_errors(settings):
        created = ensure_topics(settings.kafka_config(), specs)
        changes = _differences(settings, specs)
        set_retention(settings.kafka_config(), changes)
    for change in changes:
        click.echo(f"retention set: {change}")
    click.echo(
        f"{len(created)} topics created, {len(specs) - len(created)} already there, "
        f"{len(changes)} retention(s) set, on {settings.kafka_bootstrap_servers}"
    )


@topics.command("check")
def check() -> None:
    """List the existing topics whose retention.ms differs from the retention table (exit
    code 1 if any; nothing is changed: `ungebus topics create` sets them)."""
    settings = load_settings()
    specs = catalogue(settings)
    with _kafka_errors(settings):
        changes = _differences(settings, specs)
    for change in changes:
        click.echo(str(change))
    if changes:
        raise click.ClickException(
            f"{len(changes)} topic(s) keep records for another time than the retention table "
            "says: `ungebus topics create` (as the admin) sets them"
        )
    click.echo(f"Every topic's retention is the table's, on {settings.kafka_bootstrap_servers}")


def _differences(settings: Settings, specs: list[TopicSpec]) -> list[RetentionChange]:
    from bus.topic_retention import retention_differences

    return retention_differences(settings.kafka_config(), specs)


@contextlib.contextmanager
def _kafka_errors(settings: Settings) -> Iterator[None]:
    from confluent_kafka import KafkaException

    from bus.access import KafkaAccessError

    try:
        yield
    except KafkaAccessError as exc:
        raise click.ClickException(str(exc)) from exc
    except (KafkaException, TimeoutError) as exc:
        raise click.ClickException(
            f"Kafka at {settings.kafka_bootstrap_servers} did not answer: {exc}"
        ) from exc
