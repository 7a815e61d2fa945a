"""Components as supervised child processes: started, waited for, watched, stopped.

Each component runs as ``python -m bus <command>`` in its own session (so a Ctrl-C in the
terminal reaches only ``ungebus run``, which then stops them in order), with its output in one
log file.

A component that fails (any exit code but 0, or killed by a signal) is started again, within a
restart budget per time window (:class:`RestartBudget`): at most ``max_restarts`` in any
``window_s``. A budget for the process's whole life would turn a few poison records, spread
over weeks, into an outage; no budget at all would hide a crash loop. The budget must leave
room above the router's crash quarantine, which lets a record crash the router
``UNGEBUS_ROUTER_CRASH_LIMIT`` (3) times before it sets it aside: the default, 10 restarts in
10 minutes, takes three such records in a burst. A component that exits 0 on its own, or
runs out of budget, is reported with the end of its log.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# A component that exits with this code asks to be started again (EX_TEMPFAIL): the router
# does so when its liveness watchdog finds it stalled.
EXIT_RESTART = 75
MAX_RESTARTS = 10  # in any RESTART_WINDOW_S, per component
RESTART_WINDOW_S = 600.0

# A readiness check gets the component's log file and says whether it is ready to work.
ReadyCheck = Callable[[Path], bool]


class ComponentFailed(RuntimeError):
    """A component exited, or did not become ready in time; the message says which and why."""


@dataclass(frozen=True)
class ComponentSpec:
    name: str  # also its log file's name: <log_dir>/<name>.log
    args: tuple[str, ...]  # the ungebus command, e.g. ("connect", "http")
    ready: ReadyCheck
    after: str | None = None  # start only once this component is ready
    env: tuple[tuple[str, str], ...] = ()  # its own variables, over the supervisor's


def http_ok(url: str) -> ReadyCheck:
    """Ready once ``url`` answers 200."""

    def check(_log: Path) -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def file_written(path: Path, after: float) -> ReadyCheck:
    """Ready once the component has written ``path`` since ``after`` (a ``time.time()``).

    Better than a line in the log: the component says it is ready in so many words, and a
    file left by a run that was killed is older, so it never counts.
    """

    def check(_log: Path) -> bool:
        try:
            return path.stat().st_mtime >= after
        except FileNotFoundError:
            return False

    return check


def log_says(marker: str, times: int = 1) -> ReadyCheck:
    """Ready once the component's log contains ``marker`` (``times`` times: e.g. two workers)."""

    def check(log: Path) -> bool:
        try:
            return log.read_text(errors="replace").count(marker) >= times
        except FileNotFoundError:
            return False

    return check


@dataclass
class RestartBudget:
    """At most ``max_restarts`` restarts in any ``window_s`` seconds (``clock``: monotonic)."""

    max_restarts: int = MAX_RESTARTS
    window_s: float = RESTART_WINDOW_S
    clock: Callable[[], float] = time.monotonic
    _restarts: deque[float] = field(default_factory=deque, repr=False)

    def spend(self) -> bool:
        """Take one restart from the budget: False when the window's are all spent."""
        now = self.clock()
        while self._restarts and now - self._restarts[0] >= self.window_s:
            self._restarts.popleft()
        if len(self._restarts) >= self.max_restarts:
            return False
        self._restarts.append(now)
        return True

    def describe(self) -> str:
        return f"{self.max_restarts} restarts in {self.window_s / 60:g} minutes"


@dataclass
class Component:
    spec: ComponentSpec
    process: subprocess.Popen[bytes]
    log: Path
    started_at: float
    restarts: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> int | None:
        """Its exit code once it has exited, else None."""
        return self.process.poll()

    def how_it_ended(self) -> str:
        code = self.exited()
        if code is not None and code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        if code is not None and code > 128:  # a shell's, or ``ungebus streams``'s, report
            with contextlib.suppress(ValueError):
                killed = signal.Signals(code - 128).name
                return f"exited with code {code} (a process of it was killed by {killed})"
        return f"exited with code {code}"

    def failure(self, what: str) -> ComponentFailed:
        return ComponentFailed(
            f"{self.spec.name} {what}; the end of its log ({self.log}):\n{tail(self.log)}"
        )


class Supervisor:
    """Starts components with one environment, each logging to ``log_dir/<name>.log``;
    ``first_dead`` restarts a failed one within its :class:`RestartBudget` (``budget`` makes
    one per component) and tells ``on_restart`` why."""

    def __init__(
        self,
        log_dir: Path,
        env: Mapping[str, str],
        cwd: Path | None = None,
        budget: Callable[[], RestartBudget] = RestartBudget,
        on_restart: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self.log_dir = log_dir
        self.env = dict(env)
        self.cwd = cwd
        self.components: list[Component] = []
        self._budget = budget
        self._budgets: dict[str, RestartBudget] = {}
        self._on_restart = on_restart

    def start(self, spec: ComponentSpec, restarts: int = 0) -> Component:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{spec.name}.log"
        with log.open("ab" if restarts else "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "bus", *spec.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**self.env, **dict(spec.env)},
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        component = Component(spec, process, log, time.monotonic(), restarts)
        self.components.append(component)
        return component

    def start_all(
        self,
        specs: list[ComponentSpec],
        timeout_s: float,
        stop: threading.Event,
        echo: Callable[[str], None],
    ) -> None:
        """Start every component (each after the one it waits for) and wait until all are ready.

        Raises :class:`ComponentFailed` when one exits or is not ready within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        waiting = {s.name: s for s in specs}
        pending: dict[str, Component] = {}
        ready: set[str] = set()
        while (waiting or pending) and not stop.is_set():
            for name, spec in list(waiting.items()):
                if spec.after is None or spec.after in ready:
                    pending[name] = self.start(spec)
                    del waiting[name]
            for name, component in list(pending.items()):
                if component.exited() is not None:
                    raise component.failure(f"{component.how_it_ended()} while starting")
                if component.spec.ready(component.log):
                    took = time.monotonic() - component.started_at
                    echo(f"  {name} is ready ({took:.1f} s, pid {component.pid})")
                    ready.add(name)
                    del pending[name]
            if time.monotonic() > deadline:
                if pending:
                    late = pending[min(pending)]
                    raise late.failure(f"was not ready within {timeout_s:.0f} s")
                raise ComponentFailed(f"never started, nothing they wait for came up: {waiting}")
            stop.wait(0.25)

    def first_dead(self) -> Component | None:
        """A component that has exited on its own and is not started again, if any.

        One that failed (an exit code other than 0, :data:`EXIT_RESTART` among them, or a
        signal) is started again while its budget lasts, and does not count as dead.
        """
        for component in list(self.components):
            code = component.exited()
            if code is None:
                continue
            name = component.spec.name
            budget = self._budgets.setdefault(name, self._budget())
            if code == 0 or not budget.spend():
                return component
            self._on_restart(
                f"  {name} {component.how_it_ended()}; starting it again (at most "
                f"{budget.describe()})"
            )
            self.components.remove(component)
            self.start(component.spec, component.restarts + 1)
        return None

    def stop_all(self, grace_s: float, echo: Callable[[str], None]) -> None:
        """SIGTERM every component, then SIGKILL what still runs after ``grace_s``."""
        running = [c for c in self.components if c.exited() is None]
        for component in running:
            _signal_group(component.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for component in running:
            try:
                component.process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                echo(f"  {component.spec.name} did not stop within {grace_s:.0f} s; killing it")
                _signal_group(component.pid, signal.SIGKILL)
                component.process.wait(10)


def stop_on_signals(stop: threading.Event, echo: Callable[[str], None]) -> None:
    """SIGINT and SIGTERM set ``stop``; the caller stops everything in order.

    The handler runs in the main thread, which may be inside ``stop.wait()`` holding the
    event's lock: setting it there would deadlock, so a short-lived thread sets it.
    """

    def set_stop(name: str) -> None:
        if not stop.is_set():
            echo(f"\n{name}: stopping...")
        stop.set()

    def handle(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        threading.Thread(target=set_stop, args=(name,), name="stop", daemon=True).start()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(the log is empty)"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _die_with_parent() -> None:
    """Linux: a component gets SIGTERM when ``ungebus run`` dies, even by SIGKILL."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
