"""The supervisor's restart budget: per time window, not for the process's life (fake clock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bus.processes import Component, ComponentSpec, RestartBudget, Supervisor
from bus.services import EXIT_TOPIC_GONE


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_allows_max_restarts_in_any_window() -> None:
    clock = Clock()
    budget = RestartBudget(max_restarts=3, window_s=600, clock=clock)
    for _ in range(3):
        assert budget.spend()
        clock.now += 10
    assert not budget.spend()
    clock.now = 1000 + 599
    assert not budget.spend()  # still within 10 minutes of the first restart
    clock.now = 1000 + 600
    assert budget.spend()  # the first one has left the window
    assert not budget.spend()


def test_restarts_spread_over_a_long_life_never_run_out() -> None:
    clock = Clock()
    budget = RestartBudget(max_restarts=3, window_s=600, clock=clock)
    for _ in range(100):  # a poison record a day, for a hundred days
        assert budget.spend()
        clock.now += 24 * 3600


class FakeProcess:
    """What ``Component`` reads of a ``Popen``: the pid and, once it exited, its code."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


class FakeSupervisor(Supervisor):
    """Starts fake processes; the test decides when and how each exits."""

    def start(self, spec: ComponentSpec, restarts: int = 0) -> Component:
        process: Any = FakeProcess(pid=100 + len(self.started))
        component = Component(spec, process, self.log_dir / f"{spec.name}.log", 0.0, restarts)
        self.components.append(component)
        self.started.append(component)
        return component

    @property
    def started(self) -> list[Component]:
        return self.__dict__.setdefault("_started", [])


def _supervised(tmp_path: Path, clock: Clock) -> tuple[FakeSupervisor, list[str]]:
    said: list[str] = []
    supervisor = FakeSupervisor(
        tmp_path, {}, budget=lambda: RestartBudget(3, 600, clock), on_restart=said.append
    )
    supervisor.start(ComponentSpec("streams", ("streams",), lambda: True))
    return supervisor, said


def _dies(supervisor: FakeSupervisor, code: int) -> Component | None:
    process: Any = supervisor.started[-1].process
    process.returncode = code
    return supervisor.first_dead()


def test_a_failed_component_is_restarted_until_the_window_budget_is_spent(tmp_path: Path) -> None:
    clock = Clock()
    supervisor, said = _supervised(tmp_path, clock)

    assert _dies(supervisor, 137) is None  # the router killed (the pair reports 128 + 9)
    assert _dies(supervisor, 75) is None  # the watchdog asked for a restart
    assert _dies(supervisor, -11) is None  # a segfault
    assert [c.restarts for c in supervisor.components] == [3]
    assert "streams exited with code 137 (a process of it was killed by SIGKILL)" in said[0]
    assert "starting it again (at most 3 restarts in 10 minutes)" in said[0]
    assert "was killed by SIGSEGV" in said[2]

    dead = _dies(supervisor, 1)  # a fourth failure within 10 minutes: a crash loop
    assert dead is not None and dead.spec.name == "streams"


def test_the_budget_comes_back_as_time_passes(tmp_path: Path) -> None:
    clock = Clock()
    supervisor, _said = _supervised(tmp_path, clock)
    for _ in range(3):
        assert _dies(supervisor, 137) is None
        clock.now += 300
    assert _dies(supervisor, 137) is None  # the first restart is 15 minutes ago


def test_a_component_that_exits_cleanly_on_its_own_is_reported_not_restarted(
    tmp_path: Path,
) -> None:
    supervisor, said = _supervised(tmp_path, Clock())
    dead = _dies(supervisor, 0)
    assert dead is not None and said == []


def test_a_component_whose_topic_is_gone_waits_for_an_operator_not_restarted(
    tmp_path: Path,
) -> None:
    supervisor, said = _supervised(tmp_path, Clock())
    dead = _dies(supervisor, EXIT_TOPIC_GONE)  # restarting cannot bring the topic back
    assert dead is not None and dead.spec.name == "streams" and said == []
    assert "a topic it writes is gone: `ungebus topics create`" in dead.how_it_ended()
