"""``ungebus streams``: run the router (a faust worker) against the configured Kafka."""

from __future__ import annotations

import click

from bus.settings import load_settings
from bus.topics import ensure_topics
from streams.policy import DEFAULT_POLICY, PolicyError, load_policy


@click.command()
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True, dir_okay=False),
    default=str(DEFAULT_POLICY),
    show_default=True,
    help="The routing policy file.",
)
@click.option(
    "--loglevel", default="info", type=click.Choice(["crit", "error", "warn", "info", "debug"])
)
def streams(policy_path: str, loglevel: str) -> None:
    """Route inbound partner events to the units that must act, within consent rules."""
    from pathlib import Path

    from faust.worker import Worker

    from streams.app import create_app, internal_topics

    settings = load_settings()
    try:
        policy = load_policy(Path(policy_path))
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from exc
    ensure_topics(
        settings.kafka_config(), [*settings.topics.catalogue(), *internal_topics(settings)]
    )
    (settings.var_dir / "faust").mkdir(parents=True, exist_ok=True)
    from bus import services, telemetry

    try:
        telemetry.setup(services.ROUTER.name, settings)
    except telemetry.TelemetryError as exc:
        raise click.ClickException(str(exc)) from exc
    app = create_app(settings, policy)
    click.echo(
        f"Router starting on {settings.kafka_bootstrap_servers} with policy {policy.version} "
        f"({len(policy.rules)} rules)"
    )
    worker = Worker(app, loglevel=loglevel, quiet=True)
    # faust's start-up spinner sets the root logger to DEBUG so that it can spin on every log
    # record: every aiokafka debug line then builds a LogRecord, about 8% of the router's time.
    worker.spinner = None
    worker.execute_from_commandline()
