"""Child processes: started so that they die with their parent, supervised, stopped.

Two users: the dev stack (``ungebus run``/``demo``) runs each component as a
:class:`Supervisor`'s ``python -m bus <command>`` in its own session (so a Ctrl-C in the
terminal reaches only ``ungebus run``, which then stops them in order), with its output in one
log file; ``ungebus streams`` runs the router and the tracker side by side with
:func:`run_together`, which fails as one process would.

A supervised component that fails (any exit code but 0, or killed by a signal) is started
again, within a restart budget per time window (:class:`RestartBudget`): at most
``max_restarts`` in any ``window_s``. A budget for the process's whole life would turn a few
poison records, spread over weeks, into an outage; no budget at all would hide a crash loop.
The budget must leave room above the router's crash quarantine, which lets a record crash the
router ``UNGEBUS_ROUTER_CRASH_LIMIT`` (3) times before it sets it aside: the default, 10
restarts in 10 minutes, takes three such records in a burst. A component that exits 0 on its
own, or runs out of budget, is reported with the end of its log.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from bus import services
from bus.ready import ReadyFile
from bus.waiting import within

MAX_RESTARTS = 10  # in any RESTART_WINDOW_S, per component
RESTART_WINDOW_S = 600.0
STOP_GRACE_S = 30.0

# Whether a component is ready to work: its health endpoint answers, or its ready files are new.
ReadyCheck = Callable[[], bool]


def bus_command(*args: str) -> list[str]:
    """``python -m bus <args>`` with this interpreter: an ungebus command as a child process."""
    return [sys.executable, "-m", "bus", *args]


def start_child(
    argv: Sequence[str],
    *,
    death_signal: signal.Signals = signal.SIGTERM,
    own_session: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    output: IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv``; Linux sends it ``death_signal`` when this process dies, however it
    dies (``PR_SET_PDEATHSIG``). ``own_session``: a terminal's Ctrl-C does not reach it, and
    :func:`stop_children` signals its whole process group."""
    return subprocess.Popen(
        list(argv),
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        stdin=subprocess.DEVNULL if own_session else None,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=own_session,
        preexec_fn=lambda: _die_with_parent(death_signal),
    )


def stop_children(
    children: Iterable[subprocess.Popen[bytes]],
    grace_s: float,
    on_kill: Callable[[subprocess.Popen[bytes]], None] = lambda _child: None,
) -> None:
    """SIGTERM every child still running, then SIGKILL (after ``on_kill``) what still runs
    after ``grace_s``; a child in its own session is stopped with its process group."""
    running = [child for child in children if child.poll() is None]
    for child in running:
        _signal(child, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for child in running:
        try:
            child.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            on_kill(child)
            _signal(child, signal.SIGKILL)
            child.wait(10)


def exit_code(returncode: int) -> int:
    """A child's return code as a shell reports it: killed by signal n is 128 + n."""
    return 128 - returncode if returncode < 0 else returncode


def run_together(
    commands: Sequence[Sequence[str]],
    grace_s: float = STOP_GRACE_S,
    envs: Sequence[Mapping[str, str] | None] | None = None,
) -> int:
    """Run ``commands`` side by side as one: SIGTERM and SIGINT to this process go to each;
    when one exits on its own the others are stopped, and the result is the first one's exit
    code (0 when a signal stopped them), so that a supervisor restarts them together. If this
    process is killed, the kernel kills them (SIGKILL): they fail as one, as one process would.
    ``envs``: each command's environment (None: this process's).
    """
    envs = envs if envs is not None else [None] * len(commands)
    children = [
        start_child(argv, death_signal=signal.SIGKILL, env=env)
        for argv, env in zip(commands, envs, strict=True)
    ]
    stopping: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        stopping.append(signum)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        within(lambda: any(child.poll() is not None for child in children), math.inf)
        first = next(child for child in children if child.returncode is not None)
        stop_children(children, grace_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if stopping else exit_code(first.returncode)


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
    """Ready once ``url`` (its health endpoint) answers 200."""

    def check() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def files_written(paths: Iterable[Path], after: float) -> ReadyCheck:
    """Ready once the component has written every one of ``paths`` (its processes' ready
    files, :mod:`bus.ready`) since ``after`` (a ``time.time()``): a file left by a run that
    was killed is older, so it never counts."""
    files = [ReadyFile(path) for path in paths]
    return lambda: all(file.written_since(after) for file in files)


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
        if code == services.EXIT_TOPIC_GONE:
            return f"exited with code {code} (a topic it writes is gone: `ungebus topics create`)"
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
            process = start_child(
                bus_command(*spec.args),
                own_session=True,
                env={**self.env, **dict(spec.env)},
                cwd=self.cwd,
                output=out,
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
        waiting = {s.name: s for s in specs}
        pending: dict[str, Component] = {}
        ready: set[str] = set()

        def all_ready() -> bool:
            """Start what may start and note what is ready: True once all are (or on stop)."""
            for name, spec in list(waiting.items()):
                if spec.after is None or spec.after in ready:
                    pending[name] = self.start(spec)
                    del waiting[name]
            for name, component in list(pending.items()):
                if component.exited() is not None:
                    raise component.failure(f"{component.how_it_ended()} while starting")
                if component.spec.ready():
                    took = time.monotonic() - component.started_at
                    echo(f"  {name} is ready ({took:.1f} s, pid {component.pid})")
                    ready.add(name)
                    del pending[name]
            return stop.is_set() or not (waiting or pending)

        if not within(all_ready, timeout_s, every_s=0.25, sleep=stop.wait):
            if pending:
                late = pending[min(pending)]
                raise late.failure(f"was not ready within {timeout_s:.0f} s")
            raise ComponentFailed(f"never started, nothing they wait for came up: {waiting}")

    def first_dead(self) -> Component | None:
        """A component that has exited on its own and is not started again, if any.

        One that failed (an exit code other than 0, :data:`bus.services.EXIT_RESTART` among
        them, or a signal) is started again while its budget lasts, and does not count as dead;
        one whose topic is gone (:data:`bus.services.EXIT_TOPIC_GONE`) waits for an operator.
        """
        for component in list(self.components):
            code = component.exited()
            if code is None:
                continue
            name = component.spec.name
            budget = self._budgets.setdefault(name, self._budget())
            if code in (0, services.EXIT_TOPIC_GONE) or not budget.spend():
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
        names = {component.process: component.spec.name for component in self.components}

        def killing(child: subprocess.Popen[bytes]) -> None:
            echo(f"  {names[child]} did not stop within {grace_s:.0f} s; killing it")

        stop_children(names, grace_s, on_kill=killing)


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


def _signal(child: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal ``child``, and its process group when it leads one (its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(child.pid) == child.pid:
            os.killpg(child.pid, sig)
        else:
            child.send_signal(sig)


def _die_with_parent(death_signal: signal.Signals) -> None:
    """Linux: the child gets ``death_signal`` when its parent dies, even by SIGKILL."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, death_signal)
