"""Run the router and the handover tracker as two processes, and stop them as one.

Each is ``ungebus streams --role <role>`` with the same options and this process's output. A
signal to this process (SIGTERM, SIGINT) goes to both. When one exits on its own, the other
is stopped and this process exits with the first one's code, so a supervisor restarts the
pair (the router's watchdog exits with 75 to ask for that). If this process is killed, the
kernel kills both (``PR_SET_PDEATHSIG``): the pair fails as one, as a single worker would.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

ROLES = ("router", "tracker")
STOP_GRACE_S = 30.0


def run_pair(options: Sequence[str]) -> int:
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "bus", "streams", "--role", role, *options],
            preexec_fn=_killed_with_parent,
        )
        for role in ROLES
    ]
    stopping: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        stopping.append(signum)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while all(child.poll() is None for child in children):
        time.sleep(0.2)
    first = next(child for child in children if child.returncode is not None)
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 0 if stopping else _exit_code(first.returncode)


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode  # killed by a signal: 128 + n


def _killed_with_parent() -> None:
    """Linux: the child gets SIGKILL when this process dies, however it dies."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
