"""``ungebus streams``: the router and the handover tracker, two faust workers.

Without ``--role`` it runs both, each in its own process (a core each; a crash of one stops
both, so the supervisor restarts the pair); ``--role router`` or ``--role tracker`` runs one.

Each worker may log in to Kafka as its own principal: ``UNGEBUS_ROUTER_KAFKA_*`` and
``UNGEBUS_TRACKER_KAFKA_*`` (e.g. ``UNGEBUS_TRACKER_KAFKA_SASL_USERNAME``,
``..._SASL_PASSWORD_FILE``), when set, are that worker's ``UNGEBUS_KAFKA_*``; the parent of the
pair, and a worker without its own, use ``UNGEBUS_KAFKA_*``. ``ungebus run`` starts the pair
as ``router`` with ``UNGEBUS_TRACKER_KAFKA_*`` of ``tracker``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError

from bus.access import require_access, require_topics
from bus.limits import LimitsError, check_topics
from bus.settings import Settings
from streams.routing.policy import DEFAULT_POLICY, Policy, PolicyError, load_policy

if TYPE_CHECKING:
    from streams.routing.senders import Senders
    from streams.settings import RouterSettings, TrackerSettings


KAFKA_LOGIN = "UNGEBUS_KAFKA_"
SECRETS = ("UNGEBUS_KAFKA_SASL_PASSWORD", "UNGEBUS_KAFKA_SASL_PASSWORD_FILE")


def role_login_prefix(role: str) -> str:
    """``UNGEBUS_TRACKER_KAFKA_``: the variables of ``role``'s own Kafka login."""
    return f"UNGEBUS_{role.upper()}_KAFKA_"


def role_env(role: str, environ: Mapping[str, str]) -> dict[str, str] | None:
    """The environment of the pair's ``role`` worker: ``environ`` with its own
    ``UNGEBUS_<ROLE>_KAFKA_*`` as its ``UNGEBUS_KAFKA_*``, and no other worker's login; None
    (``environ`` as it is) when ``role`` has no login of its own."""
    from streams.runtime.app import ROLES

    own = role_login_prefix(role)
    login = {KAFKA_LOGIN + k.removeprefix(own): v for k, v in environ.items() if k.startswith(own)}
    if not login:
        return None
    others = tuple(role_login_prefix(r) for r in ROLES)
    env = {k: v for k, v in environ.items() if not k.startswith(others) and k not in SECRETS}
    return {**env, **login}


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

    from bus import services
    from streams.runtime.app import ROLES, internal_topics
    from streams.settings import RouterSettings, TrackerSettings

    try:  # both, so that the parent of the pair refuses a bad setting of either at once
        router_settings, tracker_settings = RouterSettings(), TrackerSettings()
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    settings: Settings = router_settings  # the shared ones
    try:
        policy = load_policy(Path(policy_path))
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from exc
    require_access(settings)  # each worker's principal too: --role runs the same
    if not topics_ready:
        operators = settings.topics.operations  # the pair neither reads nor writes it
        specs = [s for s in settings.topics.catalogue() if s.name != operators]
        specs += internal_topics(settings)
        require_topics(settings, specs)
        try:  # every topic either worker writes takes what the producer may send
            check_topics(
                settings.kafka_config(),
                settings.producer_message_max_bytes,
                [spec.name for spec in specs],
            )
        except LimitsError as exc:
            raise click.ClickException(str(exc)) from exc
        (settings.var_dir / services.FAUST_DIR).mkdir(parents=True, exist_ok=True)
    if role is None:
        from bus.processes import bus_command, run_together

        options = ["--policy", policy_path, "--loglevel", loglevel, "--topics-ready"]
        pair = [bus_command("streams", "--role", name, *options) for name in ROLES]
        raise SystemExit(run_together(pair, envs=[role_env(name, os.environ) for name in ROLES]))
    if role == "tracker":
        _run_tracker(tracker_settings, policy, loglevel)
    else:
        _run_router(router_settings, policy, loglevel)


def _run_router(settings: RouterSettings, policy: Policy, loglevel: str) -> None:
    from bus import services, telemetry
    from streams.runtime.app import create_router_app

    try:
        telemetry.setup(services.ROUTER.name, settings)
    except telemetry.TelemetryError as exc:
        raise click.ClickException(str(exc)) from exc
    from bus.keystore import KeyStoreError, keyring_for

    try:
        keyring = keyring_for(settings)  # unseals the events, seals the tasks' details
    except KeyStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        app = create_router_app(settings, policy, _senders(settings), keyring=keyring)
        _run(app, "router", settings, policy, loglevel)
    finally:
        keyring.close()


def _run_tracker(settings: TrackerSettings, policy: Policy, loglevel: str) -> None:
    """The tracker serves its metrics on its own port (``UNGEBUS_TRACKER_METRICS_PORT``)."""
    from bus import services, telemetry
    from streams.runtime.app import create_tracker_app

    try:
        telemetry.setup(services.ROUTER.name, settings.serving_metrics())
    except telemetry.TelemetryError as exc:
        raise click.ClickException(str(exc)) from exc
    _run(create_tracker_app(settings), "tracker", settings, policy, loglevel)


def _run(app: Any, role: str, settings: Settings, policy: Policy, loglevel: str) -> None:
    from bus import services
    from bus.ready import ReadyFile
    from streams.runtime.faust_fixes import quiet_worker

    click.echo(
        f"The {role} starts on {settings.kafka_bootstrap_servers} as principal "
        f"{settings.kafka_principal} with policy {policy.version} "
        f"({len(policy.rules)} rules)"
    )
    ready = ReadyFile.of_this_process(services.ready_file(settings.var_dir, role))
    app.task(ready.mark_when_started)  # faust runs it once its tables are recovered
    quiet_worker(app, loglevel).execute_from_commandline()


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
