"""`ungebus demo` as a newcomer runs it: the bus comes up, takes a sample day of partner
traffic, says what it did with it, and leaves nothing running — three times in a row in one
clone, each run starting and stopping its own broker, which keeps its data between runs.

Issue 23: the second run failed (its inbox stored nothing: the first run's inbox had not left
its consumer group, and the broker restored that member with its data).
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bus.ports import free_port_run, free_ports
from bus.services import AUDIT_STORE, ready_file
from deploy.local.settings import METRICS_PORT_COUNT

pytestmark = pytest.mark.integration  # it starts its own broker


def summary_count(output: str, label: str) -> int:
    match = re.search(rf"^{label}\s+(\d+)\b", output, re.MULTILINE)
    assert match, f"no '{label}' line in the summary:\n{output}"
    return int(match.group(1))


def processes_with(marker: str) -> list[int]:
    """Pids of processes whose environment holds ``marker`` (this run's unique topic prefix)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ.split(b"\0"):
            found.append(int(proc.name))
    return found


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stored_tasks(var_dir: Path) -> int:
    """Tasks in the inbox's database (the demo's inbox serves Glostrup, 161)."""
    with sqlite3.connect(var_dir / "inbox.db") as db:
        (count,) = db.execute("SELECT count(*) FROM tasks").fetchone()
    return int(count)


WHO = {  # who each component is to Kafka (README: Who may do what)
    "streams": ("router", "tracker"),
    "connect-http": ("connector-http",),
    "connect-files": ("connector-files",),
    "connect-kafka": ("connector-kafka",),
    "inbox": ("inbox-161",),
    "audit-store": ("audit-store",),
}


def test_demo_three_times_in_one_clone_summarises_and_stops_everything(tmp_path: Path) -> None:
    http_port, inbox_port, kafka_port, controller_port = free_ports(4)
    prefix = f"demo-{uuid.uuid4().hex[:8]}."
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("UNGEBUS_KAFKA_BOOTSTRAP_SERVERS", "UNGEBUS_PARTNERS_FILE")
    }
    env.update(
        {
            # The demo's own local broker (as on a fresh clone), on ports of this test's own.
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka_port}",
            "UNGEBUS_LOCAL_KAFKA_PORT": str(kafka_port),
            "UNGEBUS_LOCAL_KAFKA_CONTROLLER_PORT": str(controller_port),
            "UNGEBUS_LOCAL_KAFKA_HOME": str(tmp_path / "kafka"),
            "UNGEBUS_LOCAL_KAFKA_HEAP": "512m",
            "UNGEBUS_TOPIC_PREFIX": prefix,
            "UNGEBUS_VAR_DIR": str(tmp_path),
            "UNGEBUS_HTTP_PORT": str(http_port),
            "UNGEBUS_INBOX_PORT": str(inbox_port),
            "UNGEBUS_METRICS_PORT_BASE": str(free_port_run(METRICS_PORT_COUNT)),
            # The stores on SQLite in var/, whatever local PostgreSQL a developer runs.
            "UNGEBUS_LOCAL_POSTGRES": "false",
            "UNGEBUS_LOCAL_POSTGRES_HOME": str(tmp_path / "no-postgres"),
        }
    )

    def demo(*options: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "bus", "demo", *options],
            env=env,
            cwd=tmp_path,  # no developer's .env file
            capture_output=True,
            text=True,
            timeout=170,
            check=False,
        )
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        assert "Kafka 4" in result.stdout and " is up at " in result.stdout  # its own broker
        assert not re.search(r"\b\d{6}-\d{4}\b", result.stdout + result.stderr), "a CPR number"
        return result.stdout

    output = demo("--seed", "11", "--count", "64")
    for component in (
        "streams", "connect-http", "connect-files", "connect-kafka", "inbox", "audit-store"
    ):  # fmt: skip
        assert f"{component} is ready" in output
    assert summary_count(output, "accepted") > 0
    assert summary_count(output, "rejected") > 0  # the invalid share, refused at the edge
    assert summary_count(output, "routed") > 0
    assert summary_count(output, "undecided") == 0
    released = re.search(r"incl\. (\d+) released by a consent", output)
    assert released
    assert summary_count(output, "held") > 0 or int(released.group(1)) > 0
    # One event followed to its take-over, and its trace printed: every hop in one trace.
    assert re.search(r"demo-api-\w+ took over task", output)
    trace = output[output.index("The event's trace:") :]
    assert "ungebus-connector-http" in trace or "ungebus-connector-files" in trace, trace
    for hop in ("ungebus-router", "ungebus-inbox", "taken_over"):
        assert hop in trace, f"{hop} missing from the printed trace:\n{trace}"
    assert (tmp_path / "logs" / "streams.log").exists()
    # Each component logged in as its own principal under the ACL matrix, none as the admin.
    assert "ACLs applied: " in output
    for component, principals in WHO.items():
        log = (tmp_path / "logs" / f"{component}.log").read_text()
        for principal in principals:
            assert f"lets in principal {principal}\n" in log, component
        assert "lets in principal admin\n" not in log, component
        assert "AUTHORIZATION_FAILED" not in log, component
    stored = [stored_tasks(tmp_path)]

    # Again, twice, small: seeds whose sample day routes a task to Glostrup, so that the
    # restarted inbox must receive it (the demo takes it over, or fails after 30 s).
    for seed in ("12", "13"):
        output = demo("--seed", seed, "--count", "8")
        assert re.search(r"demo-api-\w+ took over task", output), output
        stored.append(stored_tasks(tmp_path))
    assert stored[0] < stored[1] < stored[2], f"tasks in the inbox after each run: {stored}"

    # The audit store kept the decisions, and stopped cleanly (its ready file gone).
    with sqlite3.connect(tmp_path / "audit.db") as db:
        assert db.execute("SELECT count(*) FROM audit_decisions").fetchone()[0] > 0
    assert "Audit store stopped." in (tmp_path / "logs" / "audit-store.log").read_text()
    assert not ready_file(tmp_path, AUDIT_STORE.component).exists()

    assert processes_with(f"UNGEBUS_TOPIC_PREFIX={prefix}") == []
    assert port_free(http_port)
    assert port_free(inbox_port)
    assert port_free(kafka_port)
