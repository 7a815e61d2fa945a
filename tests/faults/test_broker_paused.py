"""F4: a broker of the three-node cluster paused (SIGSTOP) for a while as partners post, as if
the network to it hung: the HTTP API answers 503 with Retry-After within its ack timeout
instead of hanging, never 202 for a record Kafka did not take, and everything acknowledged
before, during and after the pause is on the inbound topic.

With acks=all, a paused node stalls the partitions it leads and those whose in-sync replicas
still count it, until the controller fences it (or it is dropped from the ISR): the connector
says 503 meanwhile.

A record sent just before the pause may be answered 503 (its acknowledgement did not come in
time) and still be stored once the broker runs again; the partner's retry then stores it a
second time with the same event id, which the router drops (counted, not a loss).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from bus.ports import free_ports
from bus.processes import ComponentSpec, Supervisor, http_ok
from bus.settings import PROJECT_ROOT
from bus.topics import ensure_topics
from bus.waiting import wait_until
from connectors.settings import ConnectorSettings
from deploy.local.cluster import LocalCluster
from tests.support.connectors_harness import read_all
from tests.support.fault_load import (
    HttpLoad,
    cluster_env,
    cluster_login,
    partner_events,
    partners_file,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]

RATE_PER_S = 20.0
ACK_TIMEOUT_S = 3.0
PAUSE_S = 12.0


def test_f4_a_paused_broker_gets_503s_and_loses_nothing_acknowledged(
    kafka_cluster: LocalCluster, tmp_path: Path
) -> None:
    settings = ConnectorSettings(
        **cluster_login(kafka_cluster), topic_prefix=f"f4-{os.urandom(4).hex()}.",
        var_dir=tmp_path / "var",
    )  # fmt: skip
    ensure_topics(settings.kafka_config(), settings.topics.catalogue())
    events = partner_events(int(RATE_PER_S * 40))
    tokens = partners_file(tmp_path / "partners.toml", events)
    (port,) = free_ports(1)
    env = cluster_env(
        kafka_cluster,
        settings,
        UNGEBUS_PARTNERS_FILE=str(tmp_path / "partners.toml"),
        UNGEBUS_HTTP_HOST="127.0.0.1",
        UNGEBUS_HTTP_PORT=str(port),
        UNGEBUS_ACK_TIMEOUT_S=str(ACK_TIMEOUT_S),
    )
    supervisor = Supervisor(tmp_path / "logs", env, cwd=PROJECT_ROOT)
    http = ComponentSpec("http", ("connect", "http"), http_ok(f"http://127.0.0.1:{port}/healthz"))
    node = kafka_cluster.nodes[0]
    try:
        supervisor.start_all([http], 120, threading.Event(), echo=print)
        load = HttpLoad(f"http://127.0.0.1:{port}", tokens, events, RATE_PER_S).start()
        wait_until(lambda: len(load.accepted) >= RATE_PER_S * 5, 60, "the load under way")
        before = len(load.accepted)
        node.pause()
        try:
            time.sleep(PAUSE_S)  # the fault itself: the node frozen this long
        finally:
            node.resume()
        during = len(load.accepted) - before
        assert load.answers["503"] > 0, "the pause went unnoticed"
        wait_until(lambda: load.done or supervisor.first_dead(), 120, "the load's end")
        assert supervisor.first_dead() is None
        accepted = load.stop()
    finally:
        supervisor.stop_all(20, echo=print)
    stored = Counter(dict(m.headers())["ce_id"].decode() for m in read_all(settings))
    ids = [a.event_id for a in accepted]
    lost = [event_id for event_id in ids if not stored[event_id]]
    twice = sum(1 for event_id in ids if stored[event_id] > 1)
    print(f"\nF4: node {node.node_id} of 3 paused {PAUSE_S:.0f} s; {len(ids)} acknowledged "
          f"({before} before the pause, {during} during it), answers {dict(load.answers)}, "
          f"slowest answer {load.slowest_s:.1f} s; {len(lost)} lost, {twice} stored twice "
          "(a 503, then the retry; the router drops the second)")  # fmt: skip
    assert len(ids) == len(events), load.answers
    assert lost == [], f"{len(lost)} events answered 202 are not on Kafka"
    assert load.slowest_s < ACK_TIMEOUT_S + 5, "a request hung past the ack timeout"
