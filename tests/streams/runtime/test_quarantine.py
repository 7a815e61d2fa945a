"""Crash marks: a record the worker died on is counted across restarts, in a row, per partition.

A "restart" here is a new :class:`CrashMarks` on the same folder, as a new process makes.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from streams.runtime.quarantine import CrashMarks

TOPIC = "t.inbound.dropout_notice"


def _dies_on(directory: Path, offset: int, partition: int = 0) -> None:
    """A worker that reads up to ``offset`` and dies while handling it."""
    marks = CrashMarks(directory)
    for handled in range(offset):
        marks.of(TOPIC, partition).start(handled)
        marks.of(TOPIC, partition).finish(handled)
    marks.of(TOPIC, partition).start(offset)
    marks.close()  # no finish: it died


def test_each_death_on_the_same_record_counts_one_more(tmp_path: Path) -> None:
    for deaths in range(4):
        marks = CrashMarks(tmp_path)
        assert marks.of(TOPIC, 0).start(7) == deaths
        marks.close()  # and died again


def test_records_read_again_before_the_suspect_do_not_reset_its_count(tmp_path: Path) -> None:
    _dies_on(tmp_path, 7)
    _dies_on(tmp_path, 7)  # offsets 0-6 handled again first, as after a restart

    marks = CrashMarks(tmp_path)
    for handled in range(7):
        assert marks.of(TOPIC, 0).start(handled) == 0
        marks.of(TOPIC, 0).finish(handled)
    assert marks.of(TOPIC, 0).start(7) == 2


def test_a_record_handled_once_clears_its_count(tmp_path: Path) -> None:
    _dies_on(tmp_path, 3)
    marks = CrashMarks(tmp_path)
    assert marks.of(TOPIC, 0).start(3) == 1
    marks.of(TOPIC, 0).finish(3)  # a fluke: it went through this time
    marks.close()

    assert CrashMarks(tmp_path).of(TOPIC, 0).start(3) == 0


def test_a_worker_stopped_between_records_counts_no_death(tmp_path: Path) -> None:
    marks = CrashMarks(tmp_path)
    marks.of(TOPIC, 0).start(3)
    marks.of(TOPIC, 0).finish(3)
    marks.close()  # stopped (or killed) after the record's outputs were handed over

    assert CrashMarks(tmp_path).of(TOPIC, 0).start(3) == 0


def test_partitions_are_counted_apart(tmp_path: Path) -> None:
    _dies_on(tmp_path, 5, partition=1)
    marks = CrashMarks(tmp_path)
    assert marks.of(TOPIC, 0).start(5) == 0
    assert marks.of(TOPIC, 1).start(5) == 1
    assert marks.of("t.consent.events", 1).start(5) == 0


def test_the_mark_outlives_a_process_killed_with_sigkill(tmp_path: Path) -> None:
    worker = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from streams.runtime.quarantine import CrashMarks
        marks = CrashMarks(Path({str(tmp_path)!r}))
        marks.of({TOPIC!r}, 2).start(41)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    died = subprocess.run([sys.executable, "-c", worker], check=False, timeout=60)

    assert died.returncode == -9
    assert CrashMarks(tmp_path).of(TOPIC, 2).start(41) == 1
