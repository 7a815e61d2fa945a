"""The security bench's own logic: each broker's clients log in as that broker wants, whatever
the environment says, and the row reports secured / plaintext. (No broker: nothing is timed.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import security_bench
from bench.__main__ import environment
from deploy.local.broker import LocalKafka

ADMIN_LOGIN = {
    "UNGEBUS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "UNGEBUS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "UNGEBUS_KAFKA_SASL_USERNAME": "admin",
    "UNGEBUS_KAFKA_SASL_PASSWORD": "the-main-brokers-password",
}


def test_a_plaintext_brokers_clients_do_not_log_in_even_when_the_environment_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ADMIN_LOGIN.items():
        monkeypatch.setenv(name, value)
    broker = LocalKafka(home=tmp_path, port=19092, secure=False)

    config = security_bench.broker_settings(broker, topic_prefix="p.").kafka_config()

    assert config["bootstrap.servers"] == "127.0.0.1:19092"
    assert config["security.protocol"] == "PLAINTEXT"
    assert not {key for key in config if key.startswith(("sasl.", "ssl."))}


def test_a_secured_brokers_clients_log_in_as_the_principal_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ADMIN_LOGIN.items():
        monkeypatch.setenv(name, value)
    broker = LocalKafka(home=tmp_path, port=19093, secure=True)

    config = security_bench.broker_settings(broker, "router").kafka_config()

    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.username"] == "router"
    assert config["sasl.password"] == broker.security.password("router").get_secret_value()
    assert config["sasl.password"] != ADMIN_LOGIN["UNGEBUS_KAFKA_SASL_PASSWORD"]
    assert config["ssl.ca.location"] == str(broker.security.ca_cert)


def test_the_row_gives_each_brokers_rate_and_secured_over_plaintext() -> None:
    figures = {
        "secured": {
            "connect_ms": 180.0,
            "producer_events_per_s": 6000.0,
            "pass_through_events_per_s": 9000.0,
        },
        "plaintext": {
            "connect_ms": 60.0,
            "producer_events_per_s": 12000.0,
            "pass_through_events_per_s": 10000.0,
        },
        "producer_ratio": 0.5,
        "pass_through_ratio": 0.9,
    }

    measure, result, ratio = security_bench.row(figures)

    assert "TLS + SASL/SCRAM vs plaintext" in measure
    assert "secured 6,000 / 9,000 events/s; plaintext 12,000 / 10,000" in result
    assert "secured / plaintext: 0.50 / 0.90" in ratio
    assert "180 ms vs 60 ms" in ratio


def test_the_bench_login_is_taken_out_of_the_environment_afterwards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UNGEBUS_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    monkeypatch.delenv("UNGEBUS_KAFKA_SASL_USERNAME", raising=False)

    with environment(
        {"UNGEBUS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "UNGEBUS_KAFKA_SASL_USERNAME": "admin"}
    ):
        assert os.environ["UNGEBUS_KAFKA_SASL_USERNAME"] == "admin"

    assert os.environ["UNGEBUS_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    assert "UNGEBUS_KAFKA_SASL_USERNAME" not in os.environ
