"""F2: two routers in one group, one of them ``kill -9``'d every 10 to 15 s for a minute while
partners post over the HTTP API: nothing acknowledged is lost, no event gets a second task id,
and the partitions of the killed router route again within seconds (figures printed).

Each router is its own process under a supervisor (restarted after a kill, as systemd or
Kubernetes would), with its own static-membership name; the other takes the killed one's
partitions if it is not back within the session timeout (10 s here).
"""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import pytest

from bus.ports import free_ports
from bus.processes import ComponentSpec, RestartBudget, Supervisor, files_written, http_ok
from bus.services import ready_file
from bus.settings import PROJECT_ROOT
from tests.support.fault_check import reckon
from tests.support.fault_load import HttpLoad, partner_events, partners_file
from tests.support.group_progress import GroupProgress
from tests.support.harness import fresh_bus, settings_env

pytestmark = [pytest.mark.integration, pytest.mark.faults]

LOAD_S = 60.0
RATE_PER_S = 30.0
SESSION_TIMEOUT_S = 10


def test_f2_one_of_two_routers_killed_again_and_again_loses_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = fresh_bus(kafka_bootstrap, "f2", tmp_path / "bus")
    events = partner_events(int(LOAD_S * RATE_PER_S * 1.5))
    tokens = partners_file(tmp_path / "partners.toml", events)
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
    kills: list[float] = []
    rng = random.Random(2)
    try:
        supervisor.start_all([http, *routers], 240, threading.Event(), echo=print)
        progress.start()
        load = HttpLoad(f"http://127.0.0.1:{port}", tokens, events, RATE_PER_S).start()
        started = time.monotonic()
        next_kill = started + rng.uniform(10, 15)
        while time.monotonic() - started < LOAD_S:
            dead = supervisor.first_dead()  # restarts a killed router
            assert dead is None, dead.how_it_ended()
            if time.monotonic() >= next_kill:
                victim = next(c for c in supervisor.components
                              if c.spec.name == f"router-{len(kills) % 2 + 1}")  # fmt: skip
                victim.process.send_signal(signal.SIGKILL)
                kills.append(time.monotonic())
                next_kill += rng.uniform(10, 15)
            time.sleep(0.2)
        accepted = load.stop()
        # A router killed last is not started again: the other takes its partitions over.
        reckoning = reckon(settings, accepted, "f2-check", timeout_s=240)
    finally:
        progress.stop()
        supervisor.stop_all(20, echo=print)
    ends = [*kills[1:], time.monotonic()]
    standstills = [progress.standstill_after(k, end) for k, end in zip(kills, ends, strict=True)]
    print(f"\nF2: {len(kills)} kills; {reckoning.line()}; answers {dict(load.answers)}; "
          f"partitions stood still after each kill (s): "
          f"{', '.join(f'{s:.1f}' for s in standstills)}")  # fmt: skip
    assert len(kills) >= 4
    assert reckoning.acknowledged >= LOAD_S * RATE_PER_S * 0.5, load.answers
    assert reckoning.lost == [], reckoning.line()
    assert reckoning.foreign == [], reckoning.line()
