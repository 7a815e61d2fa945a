"""Two routers of one group, two handover trackers of another, an HTTP connector and a partner
load on the three-node cluster, for the fault suite's router faults (F2, F3): each worker its
own process under a supervisor (restarted after a kill, as systemd or Kubernetes would), with
its own static-membership name and var folder; the other takes a worker's partitions over if
it is gone past the session timeout."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bus.ports import free_ports
from bus.processes import (
    Component,
    ComponentSpec,
    RestartBudget,
    Supervisor,
    files_written,
    http_ok,
)
from bus.services import ready_file
from bus.settings import PROJECT_ROOT, Settings
from bus.topics import ensure_topics
from deploy.local.cluster import LocalCluster
from tests.support.fault_check import Reckoning, reckon
from tests.support.fault_load import (
    HttpLoad,
    cluster_env,
    cluster_login,
    partner_events,
    partners_file,
)
from tests.support.group_progress import GroupProgress, group_lag

SESSION_TIMEOUT_S = 10


@dataclass
class TwoRouters:
    settings: Settings
    supervisor: Supervisor
    load: HttpLoad
    progress: GroupProgress

    def router(self, n: int) -> Component:
        return self.worker(f"router-{n}")

    def tracker(self, n: int) -> Component:
        return self.worker(f"tracker-{n}")

    def worker(self, name: str) -> Component:
        return next(c for c in self.supervisor.components if c.spec.name == name)

    def trackers_lag(self) -> dict[tuple[str, int], int]:
        """Per partition the trackers' group is behind on, of every topic it reads: how many
        records it has not committed yet."""
        topics = [*self.settings.topics.all_tasks(), *self.settings.topics.all_task_acks()]
        group = f"{self.settings.topic_prefix}ungebus-tracker"
        return group_lag(self.settings.kafka_config(), group, topics)

    def keep_up(self) -> None:
        """Start again a router that died (after a kill); fail if one cannot be."""
        dead = self.supervisor.first_dead()
        assert dead is None, dead.how_it_ended()

    def reckon(self, label: str) -> Reckoning:
        """Stop the load; every acknowledged event against the task topics."""
        accepted = self.load.stop()
        return reckon(self.settings, accepted, f"{label}-check", timeout_s=240)


@contextmanager
def two_routers(
    cluster: LocalCluster, tmp_path: Path, label: str, events: int, rate_per_s: float
) -> Iterator[TwoRouters]:
    prefix = f"{label}-{uuid.uuid4().hex[:8]}."
    settings = Settings(**cluster_login(cluster), topic_prefix=prefix, var_dir=tmp_path / "bus")
    ensure_topics(settings.kafka_config(), settings.topics.catalogue())
    load_events = partner_events(events)
    tokens = partners_file(tmp_path / "partners.toml", load_events)
    (port,) = free_ports(1)
    env = cluster_env(
        cluster,
        settings,
        UNGEBUS_PARTNERS_FILE=str(tmp_path / "partners.toml"),
        UNGEBUS_HTTP_HOST="127.0.0.1",
        UNGEBUS_HTTP_PORT=str(port),
        UNGEBUS_CONSUMER_SESSION_TIMEOUT_S=str(SESSION_TIMEOUT_S),
        UNGEBUS_ROUTER_BATCH_SIZE="50",
    )
    workers = [
        ComponentSpec(
            f"{role}-{n}",
            ("streams", "--role", role, "--loglevel", "info"),
            files_written([ready_file(tmp_path / f"var-{role}-{n}", role)], after=time.time()),
            env=(
                ("UNGEBUS_CONSUMER_INSTANCE", f"{role}-{n}"),
                ("UNGEBUS_VAR_DIR", str(tmp_path / f"var-{role}-{n}")),
            ),
        )
        for role in ("router", "tracker")
        for n in (1, 2)
    ]
    http = ComponentSpec("http", ("connect", "http"), http_ok(f"http://127.0.0.1:{port}/healthz"))
    supervisor = Supervisor(
        tmp_path / "logs", env, cwd=PROJECT_ROOT, budget=lambda: RestartBudget(20, 600)
    )
    progress = GroupProgress(
        settings.kafka_config(),
        group=f"{settings.topic_prefix}ungebus-router",
        topic=settings.topics.inbound_events,
        partitions=3,
    )
    try:
        supervisor.start_all([http, *workers], 240, threading.Event(), echo=print)
        progress.start()
        load = HttpLoad(f"http://127.0.0.1:{port}", tokens, load_events, rate_per_s).start()
        yield TwoRouters(settings, supervisor, load, progress)
    finally:
        progress.stop()
        supervisor.stop_all(20, echo=print)
