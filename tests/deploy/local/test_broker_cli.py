"""`ungebus local up|status|down` as an operator uses it: idempotent, with clear errors."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from bus.ports import free_ports
from tests.support.harness import ungebus

pytestmark = pytest.mark.integration  # it starts its own broker


@pytest.fixture
def broker_env(tmp_path: Path) -> dict[str, str]:
    port, controller_port = free_ports(2)
    return {
        **os.environ,
        "UNGEBUS_LOCAL_KAFKA_HOME": str(tmp_path / "kafka"),
        "UNGEBUS_LOCAL_KAFKA_PORT": str(port),
        "UNGEBUS_LOCAL_KAFKA_CONTROLLER_PORT": str(controller_port),
        "UNGEBUS_LOCAL_KAFKA_HEAP": "384m",
        "UNGEBUS_LOCAL_POSTGRES": "false",
        "UNGEBUS_LOCAL_POSTGRES_HOME": str(tmp_path / "no-postgres"),  # never a developer's
    }


def test_up_status_down_is_idempotent(broker_env: dict[str, str]) -> None:
    port = broker_env["UNGEBUS_LOCAL_KAFKA_PORT"]
    try:
        first = ungebus(broker_env, "local", "up")
        assert first.returncode == 0, first.stderr
        assert f"is up at 127.0.0.1:{port}" in first.stdout

        second = ungebus(broker_env, "local", "up")
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout

        status = ungebus(broker_env, "local", "status")
        assert status.returncode == 0
        assert f"is running at 127.0.0.1:{port}" in status.stdout
        assert "secured: SASL_SSL + SCRAM-SHA-512" in status.stdout
        with socket.create_connection(("127.0.0.1", int(port)), timeout=2):
            pass
    finally:
        down = ungebus(broker_env, "local", "down")
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout

    again = ungebus(broker_env, "local", "down")
    assert again.returncode == 0 and "not running" in again.stdout
    stopped = ungebus(broker_env, "local", "status")
    assert stopped.returncode == 3 and "not running" in stopped.stdout
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", int(port)), timeout=2):
        pass


def test_taken_port_is_a_clear_error_not_a_stack_trace(broker_env: dict[str, str]) -> None:
    port = int(broker_env["UNGEBUS_LOCAL_KAFKA_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = ungebus(broker_env, "local", "up")
    assert result.returncode == 1
    assert f"port {port} is in use by another process" in result.stderr
    assert "UNGEBUS_LOCAL_KAFKA_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_java_says_what_to_install(broker_env: dict[str, str], tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {**broker_env, "PATH": str(empty_bin)}
    env.pop("JAVA_HOME", None)
    result = ungebus(env, "local", "up")
    assert result.returncode == 1
    assert "Java 17+ is needed" in result.stderr and "install" in result.stderr
    assert "Traceback" not in result.stderr


def test_broker_that_does_not_come_up_in_time_shows_its_log(
    broker_env: dict[str, str],
) -> None:
    env = {**broker_env, "UNGEBUS_LOCAL_KAFKA_START_TIMEOUT_S": "0.01"}
    result = ungebus(env, "local", "up")
    assert result.returncode == 1
    assert "did not accept connections" in result.stderr
    assert "the end of its log" in result.stderr
    assert "Traceback" not in result.stderr
    status = ungebus(env, "local", "status")
    assert status.returncode == 3, "a broker that timed out must not be left running"
