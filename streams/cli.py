"""``ungebus streams``: the router and the handover tracker, two faust workers.

Without ``--role`` it runs both, each in its own process (a core each; a crash of one stops
both, so the supervisor restarts the pair); ``--role router`` or ``--role tracker`` runs one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from bus.limits import LimitsError, check_topics
from bus.settings import Settings, load_settings
from bus.topics import ensure_topics
from streams.routing.policy import DEFAULT_POLICY, Policy, PolicyError, load_policy

if TYPE_CHECKING:
    from streams.routing.senders import Senders


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
@click.option(
    "--role",
    type=click.Choice(["router", "tracker"]),
    help="run only this worker [default: both, as two processes]",
)
# Set by the parent of the pair, which has created the topics already.
@click.option("--topics-ready", is_flag=True, hidden=True)
def streams(policy_path: str, loglevel: str, role: str | None, topics_ready: bool) -> None:
    """Route inbound partner events to the units that must act, within consent rules."""
    from pathlib import Path

    from pydantic import ValidationError

    from streams.runtime.app import ROLES, internal_topics

    try:
        settings = load_settings()
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        policy = load_policy(Path(policy_path))
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from exc
    if not topics_ready:
        specs = [*settings.topics.catalogue(), *internal_topics(settings)]
        ensure_topics(settings.kafka_config(), specs)
        try:  # every topic either worker writes takes what the producer may send
            check_topics(
                settings.kafka_config(),
                settings.producer_message_max_bytes,
                [spec.name for spec in specs],
            )
        except LimitsError as exc:
            raise click.ClickException(str(exc)) from exc
        (settings.var_dir / "faust").mkdir(parents=True, exist_ok=True)
    if role is None:
        from bus.processes import bus_command, run_together

        options = ["--policy", policy_path, "--loglevel", loglevel, "--topics-ready"]
        pair = [bus_command("streams", "--role", name, *options) for name in ROLES]
        raise SystemExit(run_together(pair))
    _run_worker(settings, policy, role, loglevel)


def _run_worker(settings: Settings, policy: Policy, role: str, loglevel: str) -> None:
    from faust.worker import Worker

    from bus import services, telemetry
    from bus.ready import ReadyFile
    from streams.runtime.app import create_app

    try:
        telemetry.setup(services.ROUTER.name, _for_role(settings, role))
    except telemetry.TelemetryError as exc:
        raise click.ClickException(str(exc)) from exc
    if role == "tracker":
        app = create_app(settings, policy, role="tracker")
    else:
        app = create_app(settings, policy, role="router", senders=_senders(settings))
    click.echo(
        f"The {role} starts on {settings.kafka_bootstrap_servers} with policy {policy.version} "
        f"({len(policy.rules)} rules)"
    )
    ready = ReadyFile.of_this_process(services.ready_file(settings.var_dir, role))
    app.task(ready.mark_when_started)  # faust runs it once its tables are recovered
    worker = Worker(app, loglevel=loglevel, quiet=True)
    # faust's start-up spinner sets the root logger to DEBUG so that it can spin on every log
    # record: every aiokafka debug line then builds a LogRecord, about 8% of the router's time.
    worker.spinner = None
    worker.execute_from_commandline()


def _senders(settings: Settings) -> Senders:
    from bus.demo_partners import load_or_create_partners
    from bus.partners import PartnerConfigError
    from streams.routing.senders import Senders

    try:
        registry, _tokens = load_or_create_partners(settings)
    except PartnerConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Senders checked against {len(registry)} partners from "
               f"{settings.resolved_partners_file()}")  # fmt: skip
    return Senders.from_registry(registry)


def _for_role(settings: Settings, role: str) -> Settings:
    """The tracker serves its metrics on its own port (``UNGEBUS_TRACKER_METRICS_PORT``)."""
    if role != "tracker":
        return settings
    return settings.model_copy(update={"metrics_port": settings.tracker_metrics_port})
