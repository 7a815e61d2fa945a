"""F1: a broker of the three-node cluster ``kill -9``'d five times (each time another node, and
started again) while partners post over the HTTP API: every event that got a 202 has its tasks,
none with a second task id.

Topics have three replicas and ``min.insync.replicas`` 2, the connector produces with acks=all
and idempotence, so a record acknowledged before a node died is on two others. ``make test``
sends ``UNGEBUS_FAULT_EVENTS`` events (5,000 unless set); ``make faults`` sends 20,000.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from bus.ports import free_ports
from bus.processes import ComponentSpec, RestartBudget, Supervisor, files_written, http_ok
from bus.services import ready_file
from bus.settings import PROJECT_ROOT, Settings
from bus.topics import ensure_topics
from bus.waiting import wait_until
from deploy.local.cluster import LocalCluster
from tests.support.fault_check import reckon
from tests.support.fault_load import (
    HttpLoad,
    cluster_env,
    cluster_login,
    partner_events,
    partners_file,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]

EVENTS = int(os.environ.get("UNGEBUS_FAULT_EVENTS", "5000"))
KILLS = 5
RATE_PER_S = 150.0


def test_f1_brokers_killed_five_times_lose_nothing_acknowledged(
    kafka_cluster: LocalCluster, tmp_path: Path
) -> None:
    settings = Settings(**cluster_login(kafka_cluster), topic_prefix="f1.", var_dir=tmp_path / "v")
    ensure_topics(settings.kafka_config(), settings.topics.catalogue())
    events = partner_events(EVENTS)
    tokens = partners_file(tmp_path / "partners.toml", events)
    (port,) = free_ports(1)
    env = cluster_env(
        kafka_cluster,
        settings,
        UNGEBUS_PARTNERS_FILE=str(tmp_path / "partners.toml"),
        UNGEBUS_HTTP_HOST="127.0.0.1",
        UNGEBUS_HTTP_PORT=str(port),
        UNGEBUS_ACK_TIMEOUT_S="10",
    )
    router = ComponentSpec(
        "router",
        ("streams", "--role", "router", "--loglevel", "info"),
        files_written([ready_file(settings.var_dir, "router")], after=time.time()),
    )
    http = ComponentSpec("http", ("connect", "http"), http_ok(f"http://127.0.0.1:{port}/healthz"))
    supervisor = Supervisor(
        tmp_path / "logs", env, cwd=PROJECT_ROOT, budget=lambda: RestartBudget(20, 600)
    )
    killed: list[int] = []
    try:
        supervisor.start_all([http, router], 240, threading.Event(), echo=print)
        load = HttpLoad(f"http://127.0.0.1:{port}", tokens, events, RATE_PER_S, workers=6)
        load.start()
        for n in range(KILLS):
            share = (n + 1) * len(events) // (KILLS + 1)
            wait_until(lambda s=share: len(load.accepted) >= s or load.done, 600,
                       f"{share} events acknowledged")  # fmt: skip
            node = kafka_cluster.nodes[n % len(kafka_cluster.nodes)]
            node.kill()
            killed.append(node.node_id)
            assert supervisor.first_dead() is None
            node.start()  # back before the next: two of three replicas must stay in sync
        wait_until(lambda: load.done or supervisor.first_dead(), 900, "the load's end")
        assert supervisor.first_dead() is None
        accepted = load.stop()
        reckoning = reckon(settings, accepted, "f1-check", timeout_s=300)
    finally:
        supervisor.stop_all(20, echo=print)
    print(f"\nF1: nodes killed in turn {killed}; {len(events)} sent; {reckoning.line()}; "
          f"answers {dict(load.answers)}, slowest answer {load.slowest_s:.1f} s")  # fmt: skip
    assert len(killed) == KILLS
    assert reckoning.acknowledged == len(events), load.answers
    assert reckoning.lost == [], reckoning.line()
    assert reckoning.foreign == [], reckoning.line()
