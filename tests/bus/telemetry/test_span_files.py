"""The local span files never fill a disk: rotated by size, removed when idle for days."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bus.telemetry.span_files import RotatingSpanFile, remove_stale
from bus.telemetry.trace_cli import load_spans

LINE = '{"name":"process t","context":{"trace_id":"0x1","span_id":"0x2"}}\n'


def test_a_full_file_becomes_the_previous_one_and_a_new_one_starts(tmp_path: Path) -> None:
    path = tmp_path / "ungebus-router-7.jsonl"
    out = RotatingSpanFile(path, max_bytes=len(LINE) * 3)
    for _ in range(7):
        out.write(LINE)
    out.flush()

    previous = tmp_path / "ungebus-router-7.previous.jsonl"
    assert previous.read_text() == LINE * 3  # the second full file replaced the first
    assert path.read_text() == LINE
    out.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([previous.name, path.name])


def test_the_trace_command_reads_the_previous_file_too(tmp_path: Path) -> None:
    out = RotatingSpanFile(tmp_path / "ungebus-router-7.jsonl", max_bytes=len(LINE) * 2)
    for _ in range(3):
        out.write(LINE)
    out.close()

    assert len(load_spans(tmp_path)) == 3


def test_a_file_grows_on_from_its_size_when_a_process_reopens_it(tmp_path: Path) -> None:
    path = tmp_path / "ungebus-inbox-9.jsonl"
    path.write_text(LINE * 2)
    out = RotatingSpanFile(path, max_bytes=len(LINE) * 3)
    out.write(LINE)
    out.close()

    assert (tmp_path / "ungebus-inbox-9.previous.jsonl").read_text() == LINE * 3


def test_files_idle_for_longer_than_the_keep_days_are_removed(tmp_path: Path) -> None:
    old, fresh, other = (tmp_path / n for n in ("a-1.jsonl", "b-2.jsonl", "notes.txt"))
    for path in (old, fresh, other):
        path.write_text(LINE)
    now = time.time()
    eight_days_ago = now - 8 * 86_400
    os.utime(old, (eight_days_ago, eight_days_ago))
    os.utime(other, (eight_days_ago, eight_days_ago))

    assert remove_stale(tmp_path, keep_days=7, now=now) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b-2.jsonl", "notes.txt"]
