"""``ungebus topics``: the topic catalogue, and creating it on the configured Kafka.

``ungebus topics create`` is what a deployment runs once, as the admin, before the components
start (the ``topics`` service of ``deploy/compose.yaml``; ``ungebus run`` does it at start):
on a secured cluster only the admin may create topics (``bus/acls``), the components merely
find theirs. It includes the partners' ``partner.<name>.events`` topics (the partners file, or
the local run's demo partners). Running it twice changes nothing.
"""

from __future__ import annotations

import dataclasses

import click

from bus.settings import Settings, load_settings
from bus.topics import TopicSpec


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
    """Print every topic of the bus with partitions and retention (no Kafka needed)."""
    for spec in catalogue(load_settings()):
        retention = spec.config.get("retention.ms", "default")
        click.echo(f"{spec.name}\tpartitions={spec.partitions}\tretention.ms={retention}")


@topics.command("create")
def create() -> None:
    """Create the topics that do not exist yet (idempotent); print what was created."""
    from confluent_kafka import KafkaException

    from bus.topics import ensure_topics

    settings = load_settings()
    specs = catalogue(settings)
    try:
        created = ensure_topics(settings.kafka_config(), specs)
    except (KafkaException, TimeoutError) as exc:
        raise click.ClickException(
            f"Kafka at {settings.kafka_bootstrap_servers} did not answer: {exc}"
        ) from exc
    click.echo(
        f"{len(created)} topics created, {len(specs) - len(created)} already there, "
        f"on {settings.kafka_bootstrap_servers}"
    )
