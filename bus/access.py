"""A component's first question to Kafka: may I in, and may I see my topics?

On a secured broker a wrong password makes librdkafka retry its login for ever (each failure an
``_AUTHENTICATION`` error on its error callback), and a topic its principal may not describe
looks like a topic that is not there. :func:`check_access` turns both into a
:class:`KafkaAccessError` at start-up that names the principal and what it was refused, so the
component exits with that message instead of waiting.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bus.settings import Settings
    from bus.topics import TopicSpec

AUTH_FAILURES = ("_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED", "_SSL")


class KafkaAccessError(RuntimeError):
    """Kafka refused this process's principal; the message says who, what, and what to check."""


def check_access(settings: Settings, topics: Iterable[str] = (), timeout_s: float = 30.0) -> None:
    """Log in as the configured principal and describe ``topics``; raise
    :class:`KafkaAccessError` on a refused login or a refused DESCRIBE, within ``timeout_s``."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, ClusterMetadata

    principal = settings.kafka_principal
    where = settings.kafka_bootstrap_servers
    how = f"{settings.kafka_security_protocol}, {settings.kafka_sasl_mechanism or 'no SASL'}"
    refused: list[str] = []

    def on_error(error: KafkaError) -> None:
        if error.name() in AUTH_FAILURES or error.code() in (
            KafkaError._AUTHENTICATION,
            KafkaError.SASL_AUTHENTICATION_FAILED,
        ):
            refused.append(error.str())

    config: dict[str, Any] = settings.kafka_config(error_cb=on_error, log_level=0)
    admin = AdminClient(config)
    deadline = time.monotonic() + timeout_s
    metadata: ClusterMetadata | None = None
    while metadata is None:
        if refused:
            raise KafkaAccessError(
                f"Kafka at {where} refused principal {principal!r} ({how}): "
                f"{_without_secrets(refused[-1])}; check UNGEBUS_KAFKA_SASL_USERNAME and its "
                "password (UNGEBUS_KAFKA_SASL_PASSWORD_FILE)"
            )
        if time.monotonic() >= deadline:
            raise KafkaAccessError(
                f"Kafka at {where} did not answer principal {principal!r} within "
                f"{timeout_s:.0f} s; is it running, and is {settings.kafka_security_protocol} "
                "the protocol its listener speaks?"
            )
        try:
            metadata = admin.list_topics(timeout=1)
        except KafkaException:
            admin.poll(0.2)  # the error callback is served here, not by list_topics
    wanted = list(topics)
    denied = [
        name
        for name in wanted
        if (topic := metadata.topics.get(name)) is not None
        and topic.error is not None
        and topic.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    ]
    # A topic it may not describe is simply absent from a full listing.
    missing = [name for name in wanted if name not in metadata.topics]
    if denied or (missing and settings.kafka_sasl_mechanism):
        names = denied + missing
        raise KafkaAccessError(
            f"Kafka at {where} does not let principal {principal!r} DESCRIBE "
            f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''} (denied, or no such "
            "topic); apply the ACLs (`ungebus acl apply`) or create the topics"
        )


def _without_secrets(message: str) -> str:
    """librdkafka's messages name the mechanism and the broker, never the password; cut them
    short all the same."""
    return message.split("\n", 1)[0][:300]


def require_access(settings: Settings, topics: Iterable[str] = ()) -> None:
    """:func:`check_access` for a command: a refusal is its error message and exit code 1; a
    login says who this process is to Kafka (its log's first line naming the principal)."""
    import click

    try:
        check_access(settings, topics)
    except KafkaAccessError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Kafka at {settings.kafka_bootstrap_servers} lets in principal "
               f"{settings.kafka_principal}")  # fmt: skip


def require_topics(settings: Settings, specs: Iterable[TopicSpec]) -> None:
    """A component's topics, created where its principal may (an open dev broker), else
    there already: a refusal is its error message and exit code 1, naming the principal and
    the topics (:func:`bus.topics.ensure_topics`)."""
    import click

    from bus.topics import ensure_topics

    try:
        ensure_topics(settings.kafka_config(), specs)
    except KafkaAccessError as exc:
        raise click.ClickException(str(exc)) from exc
