"""``ungebus local up|status|down|env|rotate|wipe``: the embedded Kafka, one broker or a local
cluster (``up --brokers 3``), and with ``up --postgres`` the local PostgreSQL. The commands
after ``up`` act on what runs: the cluster if one of its nodes does, else the single broker
(else the one the settings describe)."""

from __future__ import annotations

import shlex

import click

from deploy.local.broker import LocalKafka, LocalKafkaError, fetch_jars
from deploy.local.cluster import LocalCluster, local_kafka, running_cluster
from deploy.local.databases import database_env, start_databases
from deploy.local.postgres import LocalPostgres, LocalPostgresError
from deploy.local.security import ADMIN, SecurityError, principals, upsert_credentials
from deploy.local.settings import LocalKafkaSettings, LocalPostgresSettings

PLAINTEXT_WARNING = (
    "WARNING: UNGEBUS_KAFKA_SECURITY=plaintext: the local Kafka broker is OPEN (no "
    "authentication, no ACLs): anyone who reaches its port reads every municipality's tasks, "
    "CPR numbers included, and writes any topic"
)


def _broker() -> LocalKafka | LocalCluster:
    """What runs: the local cluster, else the single broker, else the configured one."""
    settings = LocalKafkaSettings()
    cluster = running_cluster(settings)
    if cluster is not None:
        return cluster
    single = LocalKafka.from_settings(settings)
    return single if single.running_pid() is not None else local_kafka(settings)


def _postgres() -> LocalPostgres:
    return LocalPostgres.from_settings(LocalPostgresSettings())


@click.group()
def local() -> None:
    """Run a real Apache Kafka broker (KRaft) on this machine, or a cluster of them."""


@local.command()
@click.option(
    "--plaintext",
    is_flag=True,
    help="an OPEN broker, no authentication [UNGEBUS_KAFKA_SECURITY=plaintext]",
)
@click.option(
    "--brokers",
    type=click.IntRange(1, 5),
    default=None,
    help="a local KRaft cluster of this many nodes, topics with min(3, nodes) replicas "
    "[UNGEBUS_LOCAL_KAFKA_BROKERS, default 1]",
)
@click.option(
    "--postgres",
    is_flag=True,
    help="also the local PostgreSQL, for the inbox and the audit store [UNGEBUS_LOCAL_POSTGRES]",
)
def up(plaintext: bool, brokers: int | None, postgres: bool) -> None:
    """Fetch the broker jars if needed, format storage once, start the broker, wait until ready.

    Secured unless told otherwise: SASL_SSL with SCRAM-SHA-512, a CA and credentials made on
    first start under the broker's home (``ungebus local env`` prints a login)."""
    settings = LocalKafkaSettings()
    if plaintext:
        settings = settings.model_copy(update={"kafka_security": "plaintext"})
    if brokers is not None:
        settings = settings.model_copy(update={"local_kafka_brokers": brokers})
    broker = local_kafka(settings)
    if not broker.secure:
        click.echo(PLAINTEXT_WARNING, err=True)
    try:
        broker.up(echo=click.echo)
        if postgres or LocalPostgresSettings().local_postgres:
            start_databases(_postgres(), click.echo)
    except (LocalKafkaError, LocalPostgresError) as exc:
        raise click.ClickException(str(exc)) from exc


@local.command()
def status() -> None:
    """Say whether the local broker (or each cluster node) runs, where, and how secured; and
    the local PostgreSQL."""
    broker = _broker()
    click.echo(broker.status())
    click.echo(_postgres().status())
    if broker.running_pid() is None:
        raise SystemExit(3)


@local.command()
def down() -> None:
    """Stop the local broker cleanly, and the local PostgreSQL if it runs (data is kept)."""
    _broker().down(echo=click.echo)
    postgres = _postgres()
    if postgres.running_pid() is not None:
        try:
            postgres.down(echo=click.echo)
        except LocalPostgresError as exc:
            raise click.ClickException(str(exc)) from exc


@local.command()
@click.argument("principal", default=ADMIN)
def env(principal: str) -> None:
    """Print the variables that log a command in as PRINCIPAL (default: admin), for
    ``eval "$(ungebus local env)"``; the password stays in its file. With the local
    PostgreSQL running, also the inbox's and the audit store's database URLs."""
    broker = _broker()
    try:
        variables = {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            **broker.client_env(principal),
        }
    except SecurityError as exc:
        raise click.ClickException(str(exc)) from exc
    if (postgres := _postgres()).running_pid() is not None:
        variables.update(database_env(postgres))
    for name, value in variables.items():
        click.echo(f"export {name}={shlex.quote(value)}")


@local.command()
@click.argument("principal")
def rotate(principal: str) -> None:
    """Give PRINCIPAL a new random password, on the running broker and in its file.

    A component logged in as PRINCIPAL keeps its connections; restart it to log in anew. For
    admin, restart the broker too (its own login is admin's)."""
    broker = _broker()
    if not broker.secure:
        raise click.ClickException("the local broker is plaintext: it has no credentials")
    if broker.running_pid() is None:
        raise click.ClickException("start the broker first: ungebus local up")
    if principal not in principals():
        raise click.ClickException(
            f"unknown principal {principal!r}; known: {', '.join(principals())}"
        )
    old_admin = broker.client_config(ADMIN)
    broker.security.new_password(principal)
    try:
        upsert_credentials(old_admin, broker.security, [principal])
    except SecurityError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"New password for {principal} in {broker.security.password_file(principal)}; "
        + (
            "restart the broker (ungebus local down && ungebus local up) and every client."
            if principal == ADMIN
            else f"restart what runs as {principal}."
        )
    )


@local.command()
@click.confirmation_option(prompt="Delete the local broker's topics and logs?")
def wipe() -> None:
    """Delete the local broker's and the local cluster's data and logs (stopped first)."""
    settings = LocalKafkaSettings()
    try:
        (running_cluster(settings) or LocalCluster.from_settings(settings)).wipe()
        LocalKafka.from_settings(settings).wipe()
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
