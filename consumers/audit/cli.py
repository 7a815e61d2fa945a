"""``ungebus audit-store`` (keep the audit store) and ``ungebus audit`` (ask it about a person).

Imports are inside the commands: ``ungebus audit`` should answer in a fraction of a second.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import click


@click.command("audit-store")
@click.option(
    "--metrics-port", type=int, help="serve Prometheus metrics here [UNGEBUS_METRICS_PORT, none]"
)
def audit_store(metrics_port: int | None) -> None:
    """Store every routing decision from audit.routing by person, until Ctrl-C or SIGTERM."""
    import threading

    from confluent_kafka import KafkaException
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from bus import services, telemetry
    from bus.access import KafkaAccessError, require_access
    from bus.processes import stop_on_signals
    from consumers.audit.service import serve
    from consumers.audit.settings import AuditSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        overrides: dict[str, Any] = {} if metrics_port is None else {"metrics_port": metrics_port}
        settings = AuditSettings(**overrides)
        require_access(settings)
        telemetry.setup(services.AUDIT_STORE.name, settings)
        if (address := telemetry.metrics_address()) is not None:
            click.echo(f"Metrics for Prometheus: http://{address[0]}:{address[1]}/metrics")
        stop = threading.Event()
        stop_on_signals(stop, click.echo)
        serve(settings, stop, click.echo)
    except (ValidationError, telemetry.TelemetryError, ValueError, KafkaAccessError) as exc:
        raise click.ClickException(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise click.ClickException(f"the audit store's database failed: {exc}") from exc
    except KafkaException as exc:
        raise click.ClickException(f"Kafka did not answer: {exc}") from exc
    finally:
        telemetry.shutdown()


@click.command()
@click.argument("person")
def audit(person: str) -> None:
    """List every routing decision about one person (CPR number or pseudonym), oldest first."""
    from consumers.audit.query import (
        NoStore,
        NotAPerson,
        read_erasures,
        read_person,
        render,
        render_erasure,
        to_pseudonym,
    )
    from consumers.audit.settings import AuditSettings

    settings = AuditSettings()
    try:
        pseudonym = to_pseudonym(person, settings)
    except NotAPerson as exc:
        raise click.BadParameter(str(exc), param_hint="PERSON") from None
    try:
        found = read_person(settings.database_url, pseudonym)
        erasures = read_erasures(settings.database_url, pseudonym)
    except NoStore as exc:
        raise click.ClickException(str(exc)) from None
    except ModuleNotFoundError as exc:  # a PostgreSQL URL without its driver
        raise click.ClickException(f"{exc}: for PostgreSQL, pip install -e '.[postgres]'") from None
    except ValueError as exc:  # a database other than SQLite or PostgreSQL
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # the database did not answer (its message quotes no row)
        from consumers.audit.query import where

        if not isinstance(exc, sqlite3.Error) and not type(exc).__module__.startswith(
            "sqlalchemy"
        ):  # SQLAlchemy's errors, told apart without importing SQLAlchemy for SQLite
            raise
        raise click.ClickException(
            f"the audit store at {where(settings.database_url)} did not answer: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    erased_at = max((e.erased_at for e in erasures), default=None)
    for decision in found:
        click.echo(
            render(decision, erased=erased_at is not None and decision.decided_at <= erased_at)
        )
    for erasure in erasures:
        click.echo(render_erasure(erasure))
    click.echo(f"{len(found)} decision(s) about pseudonym {pseudonym[:12]}…")
