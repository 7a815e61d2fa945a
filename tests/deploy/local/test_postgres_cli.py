"""`ungebus local up --postgres|status|env|down` as an operator uses it for `make run`: the
local PostgreSQL beside the broker, shown, its URLs printed without a password, stopped."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from bus.ports import free_ports
from tests.support.harness import ungebus

pytestmark = pytest.mark.integration  # it starts its own broker and PostgreSQL


def test_up_with_postgres_status_env_down(tmp_path: Path) -> None:
    port, controller_port, pg_port = free_ports(3)
    # Not under tmp_path: /tmp/pytest-of-root is closed to the server's unprivileged user.
    pg_home = Path(tempfile.mkdtemp(prefix="ungebus-postgres-cli-"))
    env = {
        **os.environ,
        "UNGEBUS_LOCAL_KAFKA_HOME": str(tmp_path / "kafka"),
        "UNGEBUS_LOCAL_KAFKA_PORT": str(port),
        "UNGEBUS_LOCAL_KAFKA_CONTROLLER_PORT": str(controller_port),
        "UNGEBUS_LOCAL_KAFKA_HEAP": "384m",
        "UNGEBUS_LOCAL_POSTGRES_HOME": str(pg_home),
        "UNGEBUS_LOCAL_POSTGRES_PORT": str(pg_port),
    }
    try:
        up = ungebus(env, "local", "up", "--postgres")
        assert up.returncode == 0, up.stderr
        assert "Kafka 4" in up.stdout
        assert f"is up at 127.0.0.1:{pg_port}" in up.stdout

        status = ungebus(env, "local", "status")
        assert status.returncode == 0, status.stderr
        assert "Kafka 4" in status.stdout
        assert f"is running at 127.0.0.1:{pg_port}" in status.stdout

        printed = ungebus(env, "local", "env")
        assert printed.returncode == 0, printed.stderr
        password = (pg_home / "pgpass").read_text().split(":")[-1].strip()
        assert password not in printed.stdout + up.stdout + status.stdout
        for name, database in (("INBOX", "inbox"), ("AUDIT", "audit")):
            assert (
                f"export UNGEBUS_{name}_DATABASE_URL='postgresql+psycopg://ungebus@127.0.0.1:"
                f"{pg_port}/{database}?passfile={pg_home / 'pgpass'}'"
            ) in printed.stdout
    finally:
        down = ungebus(env, "local", "down")
        shutil.rmtree(pg_home, ignore_errors=True)
    assert down.returncode == 0, down.stderr
    assert f"PostgreSQL at 127.0.0.1:{pg_port} stopped." in down.stdout
    stopped = ungebus(env, "local", "status")
    assert stopped.returncode == 3
    assert "PostgreSQL is not running" in stopped.stdout
