"""The secured local broker: who gets in, what an outsider gets, how a refusal reads.

Against the session broker (secured unless ``UNGEBUS_TEST_SECURE=0``): an anonymous client and
a client with a wrong password write no record and read none; a principal without ACLs sees no
topic; a component started with a wrong password exits at once, naming its principal.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from bus.access import KafkaAccessError, check_access
from bus.settings import Settings
from deploy.local.broker import LocalKafka
from deploy.local.security import ADMIN
from tests.support.admin_probe import ask_cluster_id
from tests.support.kafka_login import client_config

SECRET = "not-the-password-" + uuid.uuid4().hex


def _outsiders(broker: LocalKafka) -> dict[str, dict[str, Any]]:
    return {
        "anonymous": {"bootstrap.servers": broker.bootstrap_servers},
        "anonymous over TLS": {
            "bootstrap.servers": broker.bootstrap_servers,
            "security.protocol": "SSL",
            "ssl.ca.location": str(broker.security.ca_cert),
        },
        "wrong password": {
            **broker.client_config(ADMIN),
            "sasl.password": SECRET,
        },
        "unknown user": {
            **broker.client_config(ADMIN),
            "sasl.username": "inbox-999",
            "sasl.password": SECRET,
        },
    }


def _records_on(topic: str, bootstrap: str) -> int:
    consumer = Consumer(
        client_config(bootstrap, **{"group.id": f"count-{uuid.uuid4().hex}", "log_level": 0})
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        low_high = [
            consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            for partition in partitions
        ]
    finally:
        consumer.close()
    return sum(high - low for low, high in low_high)


def test_outsiders_write_no_record_and_read_none(
    kafka_broker: LocalKafka, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("secret")
    admin = Producer(client_config(kafka_broker.bootstrap_servers))
    admin.produce(topic, key=b"k", value=b"a task of municipality 165")
    assert admin.flush(30) == 0

    for who, config in _outsiders(kafka_broker).items():
        failures: list[str] = []
        producer = Producer(
            {**config, "log_level": 0, "message.timeout.ms": 4000, "error_cb": lambda e: None}
        )
        producer.produce(
            topic,
            value=b"forged",
            on_delivery=lambda err, _m, failures=failures: failures.append(str(err)),
        )
        assert producer.flush(30) == 0, who
        assert failures and failures[0] != "None", f"{who}: a record was accepted"

        consumer = Consumer(
            {
                **config,
                "group.id": f"outsider-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "log_level": 0,
                "error_cb": lambda e: None,
            }
        )
        try:
            consumer.subscribe([topic])
            read = []
            for _ in range(4):
                try:
                    message = consumer.poll(1.0)
                except KafkaException:
                    continue
                if message is not None and message.error() is None:
                    read.append(message.value())
            assert read == [], f"{who} read {read}"
        finally:
            consumer.close()

    assert _records_on(topic, kafka_broker.bootstrap_servers) == 1


def test_a_wrong_password_is_refused_naming_the_principal(kafka_broker: LocalKafka) -> None:
    settings = Settings(
        kafka_bootstrap_servers=kafka_broker.bootstrap_servers,
        kafka_sasl_username="router",
        kafka_sasl_password=SECRET,
        kafka_sasl_password_file=None,
    )
    with pytest.raises(KafkaAccessError) as refused:
        check_access(settings, timeout_s=30)
    assert "refused principal 'router'" in str(refused.value)
    assert SECRET not in str(refused.value)


def test_a_principal_without_acls_sees_no_topic(
    kafka_broker: LocalKafka, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("unseen")
    settings = Settings(
        kafka_bootstrap_servers=kafka_broker.bootstrap_servers,
        kafka_sasl_username="ops",
        kafka_sasl_password_file=kafka_broker.security.password_file("ops"),
    )
    check_access(settings)  # it may log in
    with pytest.raises(KafkaAccessError) as denied:
        check_access(settings, [topic])
    assert f"principal 'ops' DESCRIBE {topic}" in str(denied.value)


def test_a_component_with_a_wrong_password_exits_naming_its_principal(
    kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "UNGEBUS_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "UNGEBUS_KAFKA_SASL_USERNAME": "audit-store",
        "UNGEBUS_KAFKA_SASL_PASSWORD": SECRET,
        "UNGEBUS_VAR_DIR": str(tmp_path),
    }
    env.pop("UNGEBUS_KAFKA_SASL_PASSWORD_FILE", None)
    result = subprocess.run(
        [sys.executable, "-m", "bus", "audit-store"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "refused principal 'audit-store'" in output
    assert SECRET not in output


def test_keys_and_passwords_are_for_the_owner_only(kafka_broker: LocalKafka) -> None:
    security = kafka_broker.security
    private = [
        security.ca_key,
        security.broker_keystore,
        security.password_file(ADMIN),
        kafka_broker.config_file,
    ]
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for folder in (security.security_dir, security.credentials_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_the_controller_listener_takes_only_the_brokers_certificate(
    kafka_broker: LocalKafka,
) -> None:
    from confluent_kafka.admin import AdminClient

    ca = str(kafka_broker.security.ca_cert)
    config = {
        "bootstrap.servers": f"127.0.0.1:{_controller_port(kafka_broker)}",
        "security.protocol": "SSL",
        "ssl.ca.location": ca,
        "log_level": 0,
    }
    with pytest.raises(KafkaException):
        AdminClient(config).list_topics(timeout=5)


def _controller_port(broker: LocalKafka) -> int:
    for line in broker.config_file.read_text().splitlines():
        if line.startswith("controller.quorum.voters="):
            return int(line.rsplit(":", 1)[1])
    raise AssertionError("no controller.quorum.voters")


def _ask_the_controller(broker: LocalKafka, keystore: Path, folder: Path) -> str:
    """Kafka's Java admin client asks the controller listener for the cluster id over mutual
    TLS with ``keystore``; its answer, or the error that refused it."""
    login = folder / "controller-login.properties"
    login.write_text(
        "security.protocol=SSL\n"
        "ssl.keystore.type=PEM\n"
        f"ssl.keystore.location={keystore}\n"
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={broker.security.ca_cert}\n"
    )
    address = f"127.0.0.1:{_controller_port(broker)}"
    return ask_cluster_id(broker.classpath(), "controller", address, login)


def _certificate_from_the_brokers_ca(broker: LocalKafka, subject: str, folder: Path) -> Path:
    """A key and certificate for ``CN=subject`` signed by the broker's own CA (as if its key
    had leaked): only the subject tells it from the broker's."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_key = serialization.load_pem_private_key(broker.security.ca_key.read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(broker.security.ca_cert.read_bytes())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = folder / f"{subject}.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return pem


def test_on_the_controller_listener_the_brokers_certificate_is_admin_and_no_other_gets_in(
    kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    """super.users is ``User:admin`` alone: the broker's certificate is mapped to admin there
    (so the broker may act on its controller), a certificate with another subject from the
    same CA is refused."""
    assert "super.users=User:admin\n" in kafka_broker.config_file.read_text()
    own = _ask_the_controller(kafka_broker, kafka_broker.security.broker_keystore, tmp_path)
    assert own.startswith("cluster "), own
    for subject in ("intruder", ADMIN):  # a subject naming admin is not admin either
        other = _certificate_from_the_brokers_ca(kafka_broker, subject, tmp_path)
        refused = _ask_the_controller(kafka_broker, other, tmp_path)
        assert refused.startswith("refused: "), (subject, refused)
