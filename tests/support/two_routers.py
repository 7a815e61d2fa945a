"""Two routers of one group, an HTTP connector and a partner load, for the fault suite's
router faults (F2, F3): each router its own process under a supervisor (restarted after a
kill, as systemd or Kubernetes would), with its own static-membership name and var folder;
the other takes a router's partitions over if it is gone past the session timeout."""

from __future__ import annotations

import threading
import time
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
from tests.support.fault_check import Reckoning, reckon
from tests.support.fault_load import HttpLoad, partner_events, partners_file
from tests.support.group_progress import GroupProgress
from tests.support.harness import fresh_bus, settings_env

SESSION_TIMEOUT_S = 10


@dataclass
class TwoRouters:
    settings: Settings
    supervisor: Supervisor
    load: HttpLoad
    progress: GroupProgress

    def router(self, n: int) -> Component:
        return next(c for c in self.supervisor.components if c.spec.name == f"router-{n}")

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
    kafka_bootstrap: str, tmp_path: Path, label: str, events: int, rate_per_s: float
) -> Iterator[TwoRouters]:
    settings = fresh_bus(kafka_bootstrap, label, tmp_path / "bus")
    load_events = partner_events(events)
    tokens = partners_file(tmp_path / "partners.toml", load_events)
    (port,) = free_ports(1)
    env = settings_env(
        settings,
        UNGEBUS_PARTNERS_FILE=str(tmp_path / "partners.toml"),
        UNGEBUS_HTTP_HOST="127.0.0.1",
        UNGEBUS_HTTP_PORT=str(port),
        UNGEBUS_CONSUMER_SESSION_TIMEOUT_S=str(SESSION_TIMEOUT_S),
        UNGEBUS_ROUTER_BATCH_SIZE="50",
    )
    routers = [
        ComponentSpec(
            f"router-{n}",
            ("streams", "--role", "router", "--loglevel", "info"),
            files_written([ready_file(tmp_path / f"var-{n}", "router")], after=time.time()),
            env=(
                ("UNGEBUS_CONSUMER_INSTANCE", f"router-{n}"),
                ("UNGEBUS_VAR_DIR", str(tmp_path / f"var-{n}")),
            ),
        )
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
        supervisor.start_all([http, *routers], 240, threading.Event(), echo=print)
        progress.start()
        load = HttpLoad(f"http://127.0.0.1:{port}", tokens, load_events, rate_per_s).start()
        yield TwoRouters(settings, supervisor, load, progress)
    finally:
        progress.stop()
        supervisor.stop_all(20, echo=print)
