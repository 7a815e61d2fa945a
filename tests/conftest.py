"""Test fixtures: one real Kafka broker per test run, unique names per test.

The broker, in order of preference: ``KAFKA_BOOTSTRAP_SERVERS`` if set; a testcontainers Kafka
if a Docker engine answers; else the project's own local broker (``deploy/local``), started on
free ports in a temporary home for this session and stopped afterwards. That one is secured
(SASL_SSL, SCRAM-SHA-512, the StandardAuthorizer) unless ``UNGEBUS_TEST_SECURE=0``; its admin
login is put in the environment for the session (``UNGEBUS_KAFKA_*``), so that every settings
object a test builds and every component a test starts authenticates.

``kafka_cluster`` is a second, opt-in broker: a secured three-node local KRaft cluster
(``deploy/local/cluster.py``), started once per session when a test asks for it (the cluster and
fault tests); it has its own CA and credentials, so a test logs in with its ``client_config()``
or ``client_env()``, never the session environment's.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from bus import telemetry
from bus.ports import free_ports
from bus.topics import TopicSpec, ensure_topics
from deploy.local.broker import LocalKafka
from deploy.local.cluster import LocalCluster
from deploy.local.postgres import LocalPostgres, throwaway_postgres
from deploy.local.security import ADMIN
from tests.support import sealed
from tests.support.kafka_login import client_config
from tests.support.traced import OTEL_VARIABLES

# No test fails on wall-clock time: hypothesis's per-example deadline (200 ms by default) and its
# "data generation too slow" check both would on a busy machine; every property test runs
# without them (what a test may cost is bounded by counts, see tests/schemas/test_hostile.py).
hypothesis_settings.register_profile(
    "ungebus", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("ungebus")


_SESSION_BROKER: dict[str, LocalKafka] = {}

# One master key for every process of the session (bus.crypto): the components a test starts
# each in its own var folder must still unwrap each other's data keys.
os.environ.setdefault("UNGEBUS_MASTER_KEY", os.urandom(32).hex())


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a real Kafka broker for this test session."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    port, controller_port = free_ports(2)
    broker = LocalKafka(
        home=Path(tmp_path_factory.mktemp("kafka")),
        port=port,
        controller_port=controller_port,
        heap="512m",
        secure=os.environ.get("UNGEBUS_TEST_SECURE", "1") != "0",
    )
    broker.up(echo=lambda _msg: None)
    _SESSION_BROKER["broker"] = broker
    try:
        with pytest.MonkeyPatch.context() as session_env:
            session_env.delenv("UNGEBUS_KAFKA_SASL_PASSWORD", raising=False)
            for name, value in broker.client_env(ADMIN).items():
                session_env.setenv(name, value)
            yield broker.bootstrap_servers
    finally:
        sealed.close_keyrings()  # before the broker goes: their tails would retry it
        broker.down(echo=lambda _msg: None)


@pytest.fixture(scope="session")
def kafka_broker(kafka_bootstrap: str) -> LocalKafka:
    """The session's local broker (its security files), for the tests of its security."""
    broker = _SESSION_BROKER.get("broker")
    if broker is None:
        pytest.skip("the session broker is not the project's local broker")
    if not broker.secure:
        pytest.skip("the session broker is not secured (UNGEBUS_TEST_SECURE=0)")
    return broker


@pytest.fixture(scope="session")
def local_broker(kafka_bootstrap: str) -> LocalKafka | None:
    """The session's broker when it is the project's local one (a dev stack on it runs each
    component under its own principal), else None."""
    return _SESSION_BROKER.get("broker")


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A secured three-node local KRaft cluster for this session (free ports, a temporary
    home; stopped afterwards): its ``bootstrap_servers``, ``client_config(principal)``,
    ``client_env(principal)`` and ``nodes`` (each to kill, pause, resume and start)."""
    ports = free_ports(6)
    cluster = LocalCluster(
        home=Path(tmp_path_factory.mktemp("kafka-cluster")),
        ports=tuple(ports[:3]),
        controller_ports=tuple(ports[3:]),
        heap="384m",
        start_timeout_s=180.0,
    )
    cluster.up(echo=lambda _msg: None)
    try:
        yield cluster
    finally:
        cluster.down(echo=lambda _msg: None)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """A throwaway PostgreSQL server (Debian's, ``deploy/local/postgres.py``) on a free port in
    a temporary folder, started the first time a test asks for it, stopped after the session."""
    with throwaway_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> str:
    """A PostgreSQL URL of a database of the test's own, on the session's server; or
    ``UNGEBUS_TEST_POSTGRES_URL`` when set (one database for all: emptied for each test, its
    ``public`` schema dropped and made anew)."""
    configured = os.environ.get("UNGEBUS_TEST_POSTGRES_URL")
    if configured:
        from sqlalchemy import create_engine, text

        engine = create_engine(configured)
        with engine.begin() as db:
            db.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            db.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        return configured
    server: LocalPostgres = request.getfixturevalue("postgres_server")
    return server.create_database(f"test_{uuid.uuid4().hex[:16]}")


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """unique("tasks") -> "tasks.test_round_trip.3f9a1c": a fresh topic or group name."""
    test_name = re.sub(r"[^a-zA-Z0-9_-]", "_", request.node.name)[:60]

    def make(prefix: str) -> str:
        return f"{prefix}.{test_name}.{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def new_topic(kafka_bootstrap: str, unique: Callable[[str], str]) -> Callable[..., str]:
    """Create a uniquely named topic on the session broker and return its name."""

    def make(prefix: str = "topic", partitions: int = 1) -> str:
        name = unique(prefix)
        ensure_topics(client_config(kafka_bootstrap), [TopicSpec(name, partitions=partitions)])
        return name

    return make


@pytest.fixture
def clean_telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Telemetry shut down, no ``OTEL_*`` variables, before and after the test (tracing tests
    use it: ``pytestmark = pytest.mark.usefixtures("clean_telemetry")``)."""
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    telemetry.shutdown()
    yield
    telemetry.shutdown()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the session broker is an integration test, marked or not (the tests
    sit beside the package they test, unit and integration alike; ``make unit`` runs the
    others)."""
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        uses_broker = bool(
            uses & {"kafka_bootstrap", "kafka_cluster", "postgres_server", "postgres_url"}
        )
        if uses_broker and not item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.integration)
