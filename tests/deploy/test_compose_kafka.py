"""The compose file's Kafka, run for real without Docker: its secrets written by
``ungebus deploy secrets``, its own start command (format with admin's SCRAM credential, then
the broker on its generated ``server.properties``), its health check's client file, then the
``kafka-setup`` service's own command under its own environment, then components' logins.

Only what Docker would change is changed, by text substitution: ``/run/secrets/<name>`` is a
folder of the secret files, ``/opt/kafka/bin/*.sh`` the same Kafka classes on this project's
jars, ``kafka:9092``/``19092``/``9093`` free ports on 127.0.0.1 (the broker's certificate names
``localhost`` as well as ``kafka``), the data volume a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient

from bus import services
from bus.acls.matrix import inbox_principal
from bus.demo_partners import demo_partners
from bus.ports import free_ports
from bus.topics import Topics
from deploy.compose import COMPOSE_FILE, DEPLOY_DIR, SETUP, compose
from deploy.compose_kafka import (
    ADMIN_CLIENT,
    DATA_DIR,
    KAFKA_HOST_PORT,
    LOGINS_DIR,
    RUN_SECRETS,
    SECRETS_FROM_COMPOSE,
    write_secrets,
)
from deploy.local.broker import LocalKafka
from deploy.local.java import DEPLOY_DIR as LOCAL_DIR
from deploy.local.java import require_java
from deploy.local.readiness import answers_metadata
from tests.support.acl_observations import Op
from tests.support.acl_probe import Client
from tests.support.admin_probe import ask_cluster_id

pytestmark = pytest.mark.integration

DOCUMENT = compose()


@dataclass
class ComposeKafka:
    run: Path  # run/<service>/ is what /run/secrets/ is in that service's container
    secrets: Path  # deploy/secrets/ of this test
    bootstrap: str  # kafka:9092 here
    host_bootstrap: str  # localhost:19092 here

    def translate(self, text: str, service: str = "kafka") -> str:
        return (
            text.replace(f"{RUN_SECRETS}/", f"{self.run / service}/")
            .replace(LOGINS_DIR, str(self.secrets / "credentials"))
            .replace("kafka:9092", self.bootstrap)
            .replace("0.0.0.0:9092", self.bootstrap)
            .replace(f"localhost:{KAFKA_HOST_PORT}", self.host_bootstrap)
            .replace(f"0.0.0.0:{KAFKA_HOST_PORT}", self.host_bootstrap)
        )

    def environment(self, service: str) -> dict[str, str]:
        spec = DOCUMENT["services"][service]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("UNGEBUS_", "KAFKA_"))}
        env |= {k: self.translate(str(v), service) for k, v in spec["environment"].items()}
        env["UNGEBUS_VAR_DIR"] = str(self.run.parent / "var")
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)  # no collector here
        return env

    def client_config(self, service: str, prefix: str = "UNGEBUS_KAFKA_") -> dict[str, Any]:
        """librdkafka's configuration from a service's login variables."""
        env = self.environment(service)
        return {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": env[prefix + "SECURITY_PROTOCOL"],
            "sasl.mechanism": env[prefix + "SASL_MECHANISM"],
            "sasl.username": env[prefix + "SASL_USERNAME"],
            "sasl.password": Path(env[prefix + "SASL_PASSWORD_FILE"]).read_text().strip(),
            "ssl.ca.location": env[prefix + "SSL_CA_LOCATION"],
            "log_level": 0,
        }


def _mount_secrets(kafka: ComposeKafka) -> None:
    """Each service's compose secrets as the files /run/secrets/<target> of its container."""
    for service, spec in DOCUMENT["services"].items():
        folder = kafka.run / service
        folder.mkdir(parents=True)
        for mounted in spec.get("secrets", []):
            name, target = (mounted, mounted) if isinstance(mounted, str) else mounted.values()
            source = DOCUMENT["secrets"][name]["file"].removeprefix(f"{SECRETS_FROM_COMPOSE}/")
            (folder / target).write_text(kafka.translate((kafka.secrets / source).read_text()))


def _start_command(kafka: ComposeKafka, data: Path, logs: Path, controller_port: int) -> str:
    script: str = DOCUMENT["services"]["kafka"]["command"][2]
    lib = LocalKafka(home=data).classpath()
    java = (
        f"{require_java()} -Xmx384m -Xms384m -cp '{lib}' "
        f"-Dlog4j2.configurationFile={LOCAL_DIR / 'log4j2.yaml'} -Dkafka.logs.dir={logs}"
    )
    script = (
        kafka.translate(script)
        .replace("/opt/kafka/bin/kafka-storage.sh", f"{java} kafka.tools.StorageTool")
        .replace("/opt/kafka/bin/kafka-server-start.sh", f"{java} kafka.Kafka")
        .replace("$$", "$")  # compose's escape
    )
    server = kafka.run / "kafka" / "kafka-server.properties"
    server.write_text(
        server.read_text()
        .replace(DATA_DIR, str(data))
        .replace("127.0.0.1:9093", f"127.0.0.1:{controller_port}")
    )
    return script


@pytest.fixture(scope="module")
def compose_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeKafka]:
    home = tmp_path_factory.mktemp("compose-kafka")
    port, host_port, controller_port = free_ports(3)
    kafka = ComposeKafka(
        run=home / "run-secrets",
        secrets=home / "secrets",
        bootstrap=f"localhost:{port}",
        host_bootstrap=f"localhost:{host_port}",
    )
    write_secrets(kafka.secrets)
    _mount_secrets(kafka)
    script = _start_command(kafka, home / "data", home / "logs", controller_port)
    (home / "logs").mkdir()
    with (home / "logs" / "console.log").open("wb") as console:
        broker = subprocess.Popen(
            ["bash", "-c", script], stdout=console, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        admin = kafka.client_config(SETUP)
        from bus.waiting import within

        assert within(lambda: answers_metadata(admin), 90, every_s=0.5), (
            home / "logs" / "console.log"
        ).read_text()[-3000:]
        yield kafka
    finally:
        os.killpg(broker.pid, signal.SIGTERM)
        broker.wait(60)
        shutil.rmtree(home / "data", ignore_errors=True)


def test_the_secrets_are_the_owners_alone_on_the_host(compose_kafka: ComposeKafka) -> None:
    assert compose_kafka.secrets.stat().st_mode & 0o777 == 0o700
    ca_key = compose_kafka.secrets / "security" / "ca.key"
    assert ca_key.stat().st_mode & 0o777 == 0o600
    mounted = {source["file"] for source in DOCUMENT["secrets"].values()}
    assert not any("ca.key" in file for file in mounted), "the CA's key is never mounted"
    assert f"{SECRETS_FROM_COMPOSE}/" in next(iter(mounted))
    text = (DEPLOY_DIR / COMPOSE_FILE).read_text()
    for password in (compose_kafka.secrets / "credentials").glob("*.password"):
        assert password.read_text().strip() not in text


def test_the_health_checks_client_file_logs_in_as_admin(compose_kafka: ComposeKafka) -> None:
    answer = ask_cluster_id(
        LocalKafka(home=compose_kafka.run).classpath(),
        "server",
        compose_kafka.bootstrap,
        compose_kafka.run / "kafka" / ADMIN_CLIENT,
    )
    assert answer.startswith("cluster "), answer


def test_outsiders_get_nothing_on_either_listener(compose_kafka: ComposeKafka) -> None:
    for bootstrap in (compose_kafka.bootstrap, compose_kafka.host_bootstrap):
        anonymous = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
        with pytest.raises(KafkaException):
            anonymous.list_topics(timeout=5)
        wrong = compose_kafka.client_config(services.ROUTER.name)
        wrong |= {"bootstrap.servers": bootstrap, "sasl.password": "not-the-password"}
        with pytest.raises(KafkaException):
            AdminClient(wrong).list_topics(timeout=5)


def test_setup_creates_topics_logins_and_acls_then_each_component_is_its_own(
    compose_kafka: ComposeKafka,
) -> None:
    spec = DOCUMENT["services"][SETUP]
    setup = subprocess.run(
        [compose_kafka.translate(part, SETUP) for part in spec["command"]],
        env=compose_kafka.environment(SETUP),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "SCRAM credentials stored for" in setup.stdout
    check = subprocess.run(
        ["ungebus", "acl", "check"],
        env=compose_kafka.environment(SETUP),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr

    # Every topic of the catalogue and of the demo partners, as `ungebus topics create` makes
    # them (no partners file in the setup container).
    topics = Topics("")
    expected = [*topics.catalogue(), *topics.partner_catalogue(p.name for p in demo_partners())]
    made = AdminClient(compose_kafka.client_config(SETUP)).list_topics(timeout=10).topics
    assert {spec.name for spec in expected} <= set(made)
    assert {spec.name: spec.partitions for spec in expected} == {
        spec.name: len(made[spec.name].partitions) for spec in expected
    }

    # The router's login sees its topics; the tracker's (in the same container) is its own.
    router = compose_kafka.client_config(services.ROUTER.name)
    assert router["sasl.username"] == "router"
    assert "inbound.events" in AdminClient(router).list_topics(timeout=10).topics
    tracker = compose_kafka.client_config(services.ROUTER.name, "UNGEBUS_TRACKER_KAFKA_")
    assert tracker["sasl.username"] == "tracker"
    assert AdminClient(tracker).list_topics(timeout=10).topics

    # The inbox is its municipality's: its own tasks, not another municipality's.
    admin = Producer(compose_kafka.client_config(SETUP) | {"enable.idempotence": True})
    for topic in ("tasks.161.youth_unit", "tasks.165.youth_unit"):
        admin.produce(topic, key=b"k", value=b"a task", partition=0)
    assert admin.flush(30) == 0
    inbox = compose_kafka.client_config(services.INBOX.name)
    assert inbox["sasl.username"] == inbox_principal("161")
    probe = Client(inbox["sasl.username"], inbox)
    read = probe.consume(list(_TASKS), Op.READ, None)
    assert {o.check.target: o.allowed for o in read} == _TASKS, read
    wrote = probe.produce(list(_ACKS))
    assert {o.check.target: o.allowed for o in wrote} == _ACKS, wrote


_TASKS = {"tasks.161.youth_unit": True, "tasks.165.youth_unit": False}
_ACKS = {"task-acks.161": True, "task-acks.165": False}
