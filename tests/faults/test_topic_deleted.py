"""F6: a task topic deleted under the running router, on the three-node cluster, while partners
post over the HTTP API.

The router cannot deliver a task to a topic that is gone: it exits with a message that names
the topic and says what to do, and with its own exit code (``EXIT_TOPIC_GONE``, which a
supervisor does not restart in a loop), before acknowledging or committing that batch. The
HTTP connector keeps taking events (its topic is there). Once an operator creates the topic
again (``ungebus topics create``) and starts the router, every event acknowledged with a 202
has its tasks: nothing is lost silently. What the deletion itself destroyed (tasks already on
the deleted topic) is the operator's loss, and the only one the reckoning allows.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from bus.ports import free_ports
from bus.processes import files_written, http_ok
from bus.services import EXIT_TOPIC_GONE, ready_file
from bus.settings import Settings
from bus.topics import ensure_topics
from bus.waiting import wait_until
from deploy.local.cluster import LocalCluster
from tests.support.fault_check import expected_routes, reckon
from tests.support.fault_load import (
    HttpLoad,
    cluster_env,
    cluster_login,
    partner_events,
    partners_file,
)
from tests.support.harness import running, ungebus

pytestmark = [pytest.mark.integration, pytest.mark.faults]

EVENTS = 900
RATE_PER_S = 60.0
ROUTER = ["streams", "--role", "router", "--loglevel", "info"]


def test_f6_a_task_topic_deleted_under_the_router_stops_it_clearly_and_loses_nothing(
    kafka_cluster: LocalCluster, tmp_path: Path
) -> None:
    settings = Settings(
        **cluster_login(kafka_cluster),
        topic_prefix=f"f6-{os.urandom(4).hex()}.",
        var_dir=tmp_path / "var",
    )
    ensure_topics(settings.kafka_config(), settings.topics.catalogue())
    events = partner_events(EVENTS, seed=6)
    tokens = partners_file(tmp_path / "partners.toml", events)
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    partners = str(tmp_path / "partners.toml")
    env = cluster_env(kafka_cluster, settings, UNGEBUS_PARTNERS_FILE=partners,
                      UNGEBUS_HTTP_HOST="127.0.0.1", UNGEBUS_HTTP_PORT=str(port))  # fmt: skip
    gone = settings.topics.tasks("161", "youth_unit")
    router_log = tmp_path / "router.log"

    with running(["connect", "http"], env, tmp_path / "http.log") as http:
        started = time.time()
        with running(ROUTER, env, router_log) as router:
            router_ready = files_written([ready_file(settings.var_dir, "router")], after=started)
            wait_until(lambda: http_ok(f"{url}/healthz")() and router_ready(), 180,
                       "the connector and the router ready")  # fmt: skip
            load = HttpLoad(url, tokens, events, RATE_PER_S).start()
            wait_until(lambda: len(load.accepted) >= EVENTS // 5, 120, "a fifth of the load in")
            admin = AdminClient(settings.kafka_config())  # kept: the future needs its client
            admin.delete_topics([gone])[gone].result(60)
            # Only these events can have had tasks on the topic when it was deleted.
            before = {a.event_id for a in load.accepted}
            deleted_at = time.monotonic()
            wait_until(lambda: router.poll() is not None, 180, "the router to stop")
            stopped_after = time.monotonic() - deleted_at
        wait_until(lambda: load.done, 300, "the load's end (the connector goes on)")
        assert http.poll() is None
        accepted = load.stop()

        said = router_log.read_text(errors="replace")
        recreated = ungebus(env, "topics", "create")
        assert recreated.returncode == 0, recreated.stderr
        routes = expected_routes(settings, accepted)
        deleted_with_topic = frozenset(
            t for t, (e, topic) in routes.items() if topic == gone and e in before
        )
        with running(ROUTER, env, tmp_path / "router-2.log"):
            reckoning = reckon(settings, accepted, "f6-check", 240, deleted_with_topic)

    after = sum(1 for e, topic in routes.values() if topic == gone and e not in before)
    print(f"\nF6: {gone} deleted under the router; it stopped {stopped_after:.1f} s later with "
          f"exit code {router.returncode}; {len(deleted_with_topic)} tasks of events "
          f"acknowledged before may have gone with the topic; of the rest {reckoning.line()}; "
          f"{after} tasks for the topic acknowledged after it was deleted; "
          f"answers {dict(load.answers)}")  # fmt: skip
    assert router.returncode == EXIT_TOPIC_GONE, said[-3000:]
    assert f"no topic {gone} any more" in said and "ungebus topics create" in said, said[-3000:]
    assert after > 0  # the router did have tasks for the deleted topic
    assert len(accepted) == EVENTS, load.answers
    assert reckoning.lost == [], reckoning.line()
    assert reckoning.foreign == [], reckoning.line()
