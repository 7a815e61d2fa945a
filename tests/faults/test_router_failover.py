"""F2 and F3: two routers in one group (and two handover trackers in another) on the
three-node cluster while partners post over the HTTP API.

- F2: one router and one tracker ``kill -9``'d every 10 to 15 s for a minute: nothing
  acknowledged is lost, no event gets a second task id, the killed router's partitions route
  again within seconds, and the surviving tracker reads every task to the end (figures
  printed).
- F3: one of them ``SIGSTOP``ped past its session timeout, so the group moves its partitions
  to the other, then ``SIGCONT``ed: the zombie may finish what it held (the same records, so
  the same deterministic task ids, which the inbox stores once), but no event gets a second
  task id and none is lost.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from bus.waiting import WaitTimeout, wait_until
from deploy.local.cluster import LocalCluster
from tests.support.two_routers import SESSION_TIMEOUT_S, two_routers

pytestmark = [pytest.mark.integration, pytest.mark.faults]

LOAD_S = 60.0
RATE_PER_S = 30.0


def test_f2_one_of_two_routers_killed_again_and_again_loses_nothing(
    kafka_cluster: LocalCluster, tmp_path: Path
) -> None:
    kills: list[float] = []
    rng = random.Random(2)
    events = int(LOAD_S * RATE_PER_S * 1.5)
    with two_routers(kafka_cluster, tmp_path, "f2", events, RATE_PER_S) as bus:
        started = time.monotonic()
        next_kill = started + rng.uniform(10, 15)
        while time.monotonic() - started < LOAD_S:
            bus.keep_up()  # restarts a killed worker
            if time.monotonic() >= next_kill:
                bus.router(len(kills) % 2 + 1).process.send_signal(signal.SIGKILL)
                bus.tracker(2 - len(kills) % 2).process.send_signal(signal.SIGKILL)
                kills.append(time.monotonic())
                next_kill += rng.uniform(10, 15)
            time.sleep(0.2)
        reckoning = bus.reckon("f2")
        load_ended = time.monotonic()
        behind: dict[tuple[str, int], int] = {}

        def trackers_caught_up() -> bool:
            behind.clear()
            behind.update(bus.trackers_lag())
            return not behind

        try:
            wait_until(
                trackers_caught_up,
                180,
                "the surviving tracker caught up",
                every_s=2,
                check=bus.keep_up,  # a worker its watchdog stopped is started again (systemd)
            )
        except WaitTimeout as exc:
            raise AssertionError(f"{exc}; behind on {behind}") from exc
        tracker_caught_up_s = time.monotonic() - load_ended
    ends = [*kills[1:], load_ended]
    standstills = [bus.progress.standstill_after(k, e) for k, e in zip(kills, ends, strict=True)]
    print(f"\nF2: {len(kills)} kills; {reckoning.line()}; answers {dict(bus.load.answers)}; "
          f"partitions stood still after each kill (s): "
          f"{', '.join(f'{s:.1f}' for s in standstills)}; the surviving tracker had read "
          f"every task and take-over {tracker_caught_up_s:.1f} s after the load")  # fmt: skip
    assert len(kills) >= 4
    assert reckoning.acknowledged >= LOAD_S * RATE_PER_S * 0.5, bus.load.answers
    assert reckoning.lost == [], reckoning.line()
    assert reckoning.foreign == [], reckoning.line()


def test_f3_a_router_paused_past_its_session_comes_back_as_a_zombie_and_harms_nothing(
    kafka_cluster: LocalCluster, tmp_path: Path
) -> None:
    paused_s = SESSION_TIMEOUT_S + 8  # the group gives up on it, and moves on
    with two_routers(kafka_cluster, tmp_path, "f3", int(40 * RATE_PER_S), RATE_PER_S) as bus:
        wait_until(lambda: len(bus.load.accepted) >= RATE_PER_S * 8, 120, "the load under way")
        zombie = bus.router(1)
        zombie.process.send_signal(signal.SIGSTOP)
        paused_at = time.monotonic()
        try:
            time.sleep(paused_s)  # the fault itself: the router frozen this long
        finally:
            zombie.process.send_signal(signal.SIGCONT)
        wait_until(lambda: bus.load.done or bus.supervisor.first_dead(), 300, "the load's end")
        bus.keep_up()
        reckoning = bus.reckon("f3")
    standstill = bus.progress.standstill_after(paused_at, time.monotonic())
    print(f"\nF3: router-1 paused {paused_s} s (session timeout {SESSION_TIMEOUT_S} s); "
          f"{reckoning.line()}; partitions stood still at most {standstill:.1f} s; "
          f"router-1 started {zombie.restarts + 1} time(s)")  # fmt: skip
    assert reckoning.lost == [], reckoning.line()
    assert reckoning.foreign == [], reckoning.line()
