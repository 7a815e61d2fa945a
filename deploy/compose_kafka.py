"""The compose file's Kafka, secured like the local broker: SASL_SSL + SCRAM-SHA-512 for every
client, the controller on the container's loopback with mutual TLS, KRaft's StandardAuthorizer
with ``admin`` the only super user, and every component under its own principal.

Secrets never go into the compose file nor the image. ``ungebus deploy secrets`` writes them on
the Docker host, under ``deploy/secrets/`` (git-ignored; the folder is 0700): a throwaway CA and
the broker's certificate for ``kafka`` and ``localhost`` (``security/``), one random password per
principal (``credentials/<principal>.password``), the broker's ``server.properties`` and the
admin client file its health check uses (``kafka/``). Compose hands each container only its
own, as file secrets under ``/run/secrets/`` (bind mounts: the files are 0644 so the containers'
users, uid 1000 for Kafka and 10001 for ungebus, can read them; the 0700 folder keeps other
users of the host out; the CA's key is never mounted anywhere).

The broker formats its storage with admin's SCRAM credential on first start (KIP-900); the
one-shot ``kafka-setup`` service, as admin, creates the topics, stores every other principal's
credential and applies the ACL matrix (``ungebus acl apply --logins``): run it again after a
partner or a password was added (``docker compose run --rm kafka-setup``).
"""

from __future__ import annotations

from pathlib import Path
from string import Template
from typing import Any

import click

from bus import services
from bus.acls.logins import MECHANISM, PASSWORD_SUFFIX, SCRAM_ITERATIONS
from bus.acls.matrix import ADMIN, TRACKER, service_principal
from bus.demo_partners import demo_partners
from bus.settings import PROJECT_ROOT, Settings
from consumers.inbox.settings import InboxSettings
from deploy.local.security import BrokerSecurity, principals, secured_listeners

DEPLOY_DIR = PROJECT_ROOT / "deploy"
SECRETS_DIR = DEPLOY_DIR / "secrets"
SECRETS_FROM_COMPOSE = "./secrets"  # the same folder, as the compose file (in deploy/) names it
KAFKA_HOST = "kafka"
KAFKA_PORT = 9092  # inside the compose network: kafka:9092
KAFKA_HOST_PORT = 19092  # from the host: localhost:19092 (9092 is the local broker's)
CONTROLLER = "127.0.0.1:9093"  # the container's own loopback: nobody else reaches it
CLUSTER_ID = "fJtnD9vlXOqBZDfW3VX4VQ"  # base64url of uuid5(NAMESPACE_DNS, "compose.ungebus")
DATA_DIR = "/var/lib/kafka/data"
RUN_SECRETS = "/run/secrets"
LOGINS_DIR = "/run/ungebus-logins"  # the setup job's view of credentials/ (read-only)

# Compose secret names (and file names under /run/secrets/).
CA = "kafka-ca.pem"
BROKER_KEYSTORE = "kafka-broker.pem"
SERVER_PROPERTIES = "kafka-server.properties"
ADMIN_CLIENT = "kafka-admin-client.properties"
PASSWORD = "kafka-password"  # a component's own password, whoever it is
TRACKER_PASSWORD = "kafka-tracker-password"  # the streams service's second process


def login_secret(principal: str) -> str:
    return f"kafka-login-{principal}"


def compose_principals() -> tuple[str, ...]:
    """Every principal the compose deployment has a password for: admin, the roles', each
    municipality's inbox, and the demo partners' (those the HTTP connector writes at first
    start; a partner of your own: add its password file and run kafka-setup again)."""
    return principals(p.name for p in demo_partners())


# -- the files on the host ----------------------------------------------------------------------


def _broker_properties(security: BrokerSecurity) -> str:
    template = Template((DEPLOY_DIR / "local" / "server.properties.template").read_text())
    listeners = secured_listeners(
        {
            "CLIENT": (f"0.0.0.0:{KAFKA_PORT}", f"{KAFKA_HOST}:{KAFKA_PORT}"),
            "HOST": (f"0.0.0.0:{KAFKA_HOST_PORT}", f"localhost:{KAFKA_HOST_PORT}"),
        },
        CONTROLLER,
        keystore=f"{RUN_SECRETS}/{BROKER_KEYSTORE}",
        ca=f"{RUN_SECRETS}/{CA}",
        admin_password=security.password(ADMIN),
    )
    return template.substitute(
        node_id=1, voters=f"1@{CONTROLLER}", data_dir=DATA_DIR, listeners=listeners,
        replicas=1, min_insync_replicas=1,
    )  # fmt: skip


def _admin_client_properties(security: BrokerSecurity) -> str:
    password = security.password(ADMIN).get_secret_value()
    return "\n".join(
        [
            "security.protocol=SASL_SSL",
            f"sasl.mechanism={MECHANISM}",
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{ADMIN}" password="{password}";',
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={RUN_SECRETS}/{CA}",
            "",
        ]
    )


def write_secrets(directory: Path = SECRETS_DIR) -> list[Path]:
    """Create what is missing under ``directory`` (an existing CA or password is kept); return
    the files the containers read."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    security = BrokerSecurity(home=directory, hosts=(KAFKA_HOST, "localhost"))
    security.ensure(compose_principals()[1:])
    kafka = directory / "kafka"
    kafka.mkdir(mode=0o700, exist_ok=True)
    (kafka / "server.properties").write_text(_broker_properties(security))
    (kafka / "admin-client.properties").write_text(_admin_client_properties(security))
    shared = [
        security.ca_cert,
        security.broker_keystore,
        kafka / "server.properties",
        kafka / "admin-client.properties",
        *sorted(security.credentials_dir.glob(f"*{PASSWORD_SUFFIX}")),
    ]
    for folder in (security.security_dir, security.credentials_dir, kafka):
        folder.chmod(0o755)  # readable by the containers' users; `directory` (0700) guards them
    for path in shared:
        path.chmod(0o644)
    return shared


# -- the compose document -----------------------------------------------------------------------


def secrets() -> dict[str, Any]:
    """The compose file's top-level ``secrets``: files on the host, under deploy/secrets/."""
    files = {
        CA: "security/ca.pem",
        BROKER_KEYSTORE: "security/broker.pem",
        SERVER_PROPERTIES: "kafka/server.properties",
        ADMIN_CLIENT: "kafka/admin-client.properties",
    }
    files |= {login_secret(p): f"credentials/{p}{PASSWORD_SUFFIX}" for p in compose_principals()}
    return {name: {"file": f"{SECRETS_FROM_COMPOSE}/{path}"} for name, path in files.items()}


_ADMIN_SCRAM = (
    f"{MECHANISM}=[name={ADMIN},password=$$(cat {RUN_SECRETS}/{login_secret(ADMIN)}),"
    f"iterations={SCRAM_ITERATIONS}]"
)
# "$$" is compose's escape for "$": the shell reads admin's password from its secret file.
_START = f"""\
set -eu
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted --cluster-id={CLUSTER_ID} \\
  --config {RUN_SECRETS}/{SERVER_PROPERTIES} --add-scram "{_ADMIN_SCRAM}"
exec /opt/kafka/bin/kafka-server-start.sh {RUN_SECRETS}/{SERVER_PROPERTIES}
"""


def kafka_service(version: str) -> dict[str, Any]:
    """One KRaft node (broker and controller in one), secured; auto-creation off."""
    return {
        "image": f"apache/kafka:{version}",
        # Format with admin's SCRAM credential on first start, then run on our properties.
        "command": ["bash", "-c", _START],
        "secrets": [CA, BROKER_KEYSTORE, SERVER_PROPERTIES, ADMIN_CLIENT, login_secret(ADMIN)],
        "ports": [f"127.0.0.1:{KAFKA_HOST_PORT}:{KAFKA_HOST_PORT}"],
        "volumes": [f"kafka-data:{DATA_DIR}"],
        "healthcheck": {
            "test": [
                "CMD-SHELL",
                f"/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server "
                f"localhost:{KAFKA_PORT} --command-config {RUN_SECRETS}/{ADMIN_CLIENT}"
                " > /dev/null 2>&1",
            ],
            "interval": "5s",
            "timeout": "20s",
            "retries": 30,
            "start_period": "15s",
        },
        "restart": "unless-stopped",
    }


def login_environment(
    secret: str, principal: str, prefix: str = "UNGEBUS_KAFKA_"
) -> dict[str, str]:
    """The variables of a login as ``principal`` (``UNGEBUS_KAFKA_*``, or a process's own
    ``UNGEBUS_TRACKER_KAFKA_*``), its password the file secret ``secret`` (never a variable:
    environments are easy to read)."""
    values = {
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": MECHANISM,
        "kafka_sasl_username": principal,
        "kafka_sasl_password_file": f"{RUN_SECRETS}/{secret}",
        "kafka_ssl_ca_location": f"{RUN_SECRETS}/{CA}",
    }
    unknown = set(values) - set(Settings.model_fields)
    if unknown:
        raise KeyError(f"bus.settings.Settings has no setting {sorted(unknown)}")
    return {prefix + field.removeprefix("kafka_").upper(): v for field, v in values.items()}


def setup_login() -> tuple[dict[str, str], list[Any], list[str]]:
    """The setup job's environment, secrets and volumes: admin, and every password file."""
    environment = login_environment(login_secret(ADMIN), ADMIN)
    volumes = [f"{SECRETS_FROM_COMPOSE}/credentials:{LOGINS_DIR}:ro"]
    return environment, [CA, login_secret(ADMIN)], volumes


SETUP_COMMAND = ["sh", "-c", f"ungebus topics create && ungebus acl apply --logins {LOGINS_DIR}"]


def component_login(service: services.Service) -> tuple[dict[str, str], list[Any]]:
    """A component's environment and secrets: its own principal's password only (the streams
    service's tracker process its own as well)."""
    inbox_kommunekode = InboxSettings.model_fields["inbox_kommunekode"].default
    principal = service_principal(service, inbox_kommunekode)
    environment = login_environment(PASSWORD, principal)
    mounted: list[Any] = [CA, {"source": login_secret(principal), "target": PASSWORD}]
    if service is services.ROUTER:
        environment |= login_environment(TRACKER_PASSWORD, TRACKER, "UNGEBUS_TRACKER_KAFKA_")
        mounted.append({"source": login_secret(TRACKER), "target": TRACKER_PASSWORD})
    return environment, mounted


@click.command("secrets")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=SECRETS_DIR,
    show_default=True,
)
def secrets_command(directory: Path) -> None:
    """Write the compose deployment's Kafka CA, certificate and passwords (kept if there)."""
    written = write_secrets(directory)
    principals_count = len(compose_principals())
    click.echo(f"{len(written)} files in {directory} (a CA, the broker's certificate, "
               f"{principals_count} principals' passwords); never commit them")  # fmt: skip
