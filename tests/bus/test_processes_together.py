"""``run_together`` (how ``ungebus streams`` runs the router and the tracker): real child
processes, no mocks. One exits: the other is stopped and its code is the pair's; a signal to
the parent stops both, and the pair exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from bus.processes import run_together
from bus.waiting import wait_until


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def sleeper(pid_file: Path) -> list[str]:
    """A child that writes its pid, then sleeps until stopped."""
    return python(f"""
        import os, pathlib, time
        pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))
        time.sleep(600)
    """)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    return state != "Z"


def test_one_exits_the_other_is_stopped_and_its_code_is_the_pairs(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    waits_for_sleeper = python(f"""
        import pathlib, sys, time
        while not pathlib.Path({str(pid_file)!r}).exists():
            time.sleep(0.05)
        sys.exit(75)
    """)
    assert run_together([sleeper(pid_file), waits_for_sleeper], grace_s=10) == 75
    assert not alive(int(pid_file.read_text()))


def test_a_child_killed_by_a_signal_is_reported_as_a_shell_would(tmp_path: Path) -> None:
    killed = python("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert run_together([sleeper(tmp_path / "pid"), killed], grace_s=10) == 128 + 9


def test_a_signal_to_the_parent_stops_both_and_the_pair_exits_0(tmp_path: Path) -> None:
    pids = [tmp_path / "a.pid", tmp_path / "b.pid"]
    parent = subprocess.Popen(
        python(f"""
            import sys
            from bus.processes import run_together
            from tests.bus.test_processes_together import sleeper
            from pathlib import Path
            sys.exit(run_together([sleeper(Path(p)) for p in {[str(p) for p in pids]!r}]))
        """),
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        wait_until(lambda: all(p.exists() and p.read_text() for p in pids), 30, "both children")
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(30) == 0
        assert not any(alive(int(p.read_text())) for p in pids)
    finally:
        parent.kill()
        parent.wait()
