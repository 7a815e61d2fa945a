"""The tests' Kafka login: the session broker is secured, and its admin login is in the
environment (``UNGEBUS_KAFKA_*``, set by the session fixture) so that every ``Settings`` a test
builds, and every component a test starts, authenticates."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bus.ports import free_ports
from bus.settings import Settings
from deploy.local.broker import LocalKafka
from deploy.local.security import ADMIN


def client_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    """A raw librdkafka configuration for ``bootstrap``, logged in as the tests are."""
    return Settings(kafka_bootstrap_servers=bootstrap).kafka_config(**overrides)


def login_fields(broker: LocalKafka, principal: str = ADMIN) -> dict[str, Any]:
    """Settings fields that log in to ``broker`` (a test's own broker) as ``principal``."""
    fields: dict[str, Any] = {
        name.removeprefix("UNGEBUS_").lower(): value
        for name, value in broker.client_env(principal).items()
    }
    fields.setdefault("kafka_sasl_mechanism", None)
    fields.setdefault("kafka_sasl_username", None)
    fields.setdefault("kafka_sasl_password_file", None)
    fields.setdefault("kafka_ssl_ca_location", None)
    fields["kafka_sasl_password"] = None
    return fields


@contextmanager
def own_secured_broker(home: Path) -> Iterator[LocalKafka]:
    """A secured broker of a test module's own (StandardAuthorizer, admin the super user), on
    free ports: ACLs a test applies and breaks there never reach the session broker."""
    port, controller_port = free_ports(2)
    broker = LocalKafka(
        home=home, port=port, controller_port=controller_port, heap="384m", secure=True
    )
    broker.up(echo=lambda _msg: None)
    try:
        yield broker
    finally:
        broker.down(echo=lambda _msg: None)
