"""``ungebus inbox``: the youth unit's inbox (web page, JSON API and Kafka feed)."""

from __future__ import annotations

import logging
from typing import Any

import click

from schemas import KOMMUNEKODER, UNITS


@click.group(invoke_without_command=True)
@click.option(
    "--metrics-port", type=int, help="serve Prometheus metrics here [UNGEBUS_METRICS_PORT, none]"
)
@click.pass_context
def inbox(ctx: click.Context, metrics_port: int | None) -> None:
    """Run the inbox of one municipality's units (UNGEBUS_INBOX_* settings), until Ctrl-C."""
    if ctx.invoked_subcommand is not None:
        return
    from confluent_kafka import KafkaException
    from pydantic import ValidationError

    from bus import services, telemetry
    from bus.access import KafkaAccessError, require_access
    from bus.limits import LimitsError
    from bus.retention import RetentionError
    from consumers.inbox.caseworkers import AccountsError
    from consumers.inbox.service import InboxFailed, serve
    from consumers.inbox.settings import InboxSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        overrides: dict[str, Any] = {} if metrics_port is None else {"metrics_port": metrics_port}
        settings = InboxSettings(**overrides)
        require_access(settings)
        telemetry.setup(services.INBOX.name, settings)
        if (address := telemetry.metrics_address()) is not None:
            click.echo(f"Metrics for Prometheus: http://{address[0]}:{address[1]}/metrics")
        serve(settings, echo=click.echo)
    except (
        AccountsError,
        ValidationError,
        LimitsError,
        telemetry.TelemetryError,
        InboxFailed,
        KafkaAccessError,
        RetentionError,
    ) as exc:
        raise click.ClickException(str(exc)) from exc
    except KafkaException as exc:
        raise click.ClickException(f"Kafka did not answer: {exc}") from exc
    finally:
        telemetry.shutdown()


@inbox.command("migrate")
def migrate_command() -> None:
    """Bring the task store's schema up to date (the inbox also does this at every start)."""
    from consumers.inbox.migrate import migrate
    from consumers.inbox.settings import InboxSettings
    from consumers.inbox.store import connect

    settings = InboxSettings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    engine = connect(settings.database_url)
    migrate(engine)
    click.echo(f"Task store up to date: {engine.url.render_as_string()}")


@inbox.command("purge")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
def purge_command(dry_run: bool) -> None:
    """Delete the closed (taken-over) tasks past their retention, with their details, note and
    escalations (the retention table's class "tasks"; the running inbox does this hourly)."""
    from bus.retention import RetentionError, default_retention
    from consumers.inbox.feed import utc_now
    from consumers.inbox.migrate import migrate
    from consumers.inbox.purge import purge_closed
    from consumers.inbox.settings import InboxSettings
    from consumers.inbox.store import connect

    settings = InboxSettings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    engine = connect(settings.database_url)
    try:
        migrate(engine)
        purge = purge_closed(engine, default_retention(), utc_now(), dry_run=dry_run)
    except RetentionError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    click.echo(f"{engine.url.render_as_string()}: {purge}")
    if purge.checkpointed is False:
        click.echo("The write-ahead log is still in use: run the purge again to empty it.")


@inbox.command("add-caseworker")
@click.argument("staff_id")
@click.option("--kommunekode", type=click.Choice(sorted(KOMMUNEKODER)), required=True)
@click.option("--unit", type=click.Choice(UNITS), required=True)
@click.option("--api-token", is_flag=True, help="Also issue a bearer token for the JSON API.")
@click.password_option(help="Asked for when not given.")
def add_caseworker(
    staff_id: str, kommunekode: str, unit: str, api_token: bool, password: str
) -> None:
    """Add (or reset) a caseworker account in the users file; passwords are stored hashed."""
    from consumers.inbox.caseworkers import Caseworker, add_account
    from consumers.inbox.settings import InboxSettings

    path = InboxSettings().users_file
    token = add_account(
        path, Caseworker(staff_id, kommunekode, unit), password, api_token=api_token
    )
    click.echo(f"{staff_id} can sign in to the inbox of {unit} in {kommunekode} ({path}).")
    if token:
        click.echo(f"API token (shown once): {token}")
