"""Crash quarantine: a record the worker crashed on N times in a row is set aside.

A record can end the process where no ``except`` runs: a segfault in a C extension, the
kernel's OOM killer, an exit deep in a library, an agent that died and left the watchdog to
restart the worker. Its offset is then never acked, the restarted worker reads it again first,
and dies again: one record stops its partition, and every restart spends the supervisor's
budget. So each record's handling is marked in flight *before* it starts and cleared *after*
its outputs are handed to the producer. A mark still set when the worker starts means it
died on that record; after ``limit`` such deaths in a row the record is dead-lettered
(``crashed_router``) instead of handled, and acked once the dead letter is on Kafka.

Where the mark lives, and why: a small memory-mapped file per app id and partition,
``<var>/crash-marks/<app id>/<topic>-<partition>``.
- A store into a shared mapping lands in the kernel's page cache: it outlives the process
  however the process dies (SIGKILL included) and costs no system call, well under a
  microsecond a record (two stores; measured in the README). It does not outlive the
  machine (no fsync): after a power cut the count starts over, at most ``limit`` more deaths.
- A faust table is written only when a commit window commits, after the outputs: too late
  for a crash in the middle of the window. A Kafka write per record would be a round trip per
  record, at ~1,000 records a second.
- Per partition, because that is the unit of order: a partition's records are handled one at
  a time, in offset order (agent concurrency 1), and a partition has one worker at a time.
  A record before the crashed one that is read again after the restart does not disturb the
  count: each file has a slot for the record in flight and one for the suspect.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

# suspect offset, crashes on it, offset in flight, in-flight flag (written last, cleared after)
_LAYOUT = struct.Struct("<qqqB")
_OFFSET = struct.Struct("<q")
_IN_FLIGHT_AT = 16
_FLAG_AT = 24
_SIZE = 64
_NONE = -1


class PartitionMark:
    """The crash mark of one partition: which record is in flight, which crashed how often."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < _SIZE:
                os.ftruncate(fd, _SIZE)  # a new file reads as zeros: no flag set
                os.pwrite(fd, _LAYOUT.pack(_NONE, 0, _NONE, 0), 0)
            self._map = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)  # the mapping keeps the file
        suspect, crashes, in_flight, flag = _LAYOUT.unpack_from(self._map)
        if flag:  # the last worker died while handling ``in_flight``
            crashes = crashes + 1 if suspect == in_flight else 1
            suspect = in_flight
            _LAYOUT.pack_into(self._map, 0, suspect, crashes, in_flight, 0)
        self.suspect: int = suspect
        self.crashes: int = crashes if suspect != _NONE else 0

    def start(self, offset: int) -> int:
        """Mark ``offset`` in flight; how many times in a row the worker died on it."""
        crashes = self.crashes if offset == self.suspect else 0
        mapped = self._map
        _OFFSET.pack_into(mapped, _IN_FLIGHT_AT, offset)
        mapped[_FLAG_AT] = 1  # after the offset: a set flag always has its offset
        return crashes

    def finish(self, offset: int) -> None:
        """``offset`` was handled (or set aside): the worker did not die on it."""
        self._map[_FLAG_AT] = 0
        if offset == self.suspect:
            self.suspect, self.crashes = _NONE, 0
            _LAYOUT.pack_into(self._map, 0, _NONE, 0, offset, 0)

    def close(self) -> None:
        self._map.close()


class CrashMarks:
    """The crash marks of one worker (one app id), a file per partition, opened when first
    needed. Assumes one worker of the app id per machine (README: one router per group)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._marks: dict[tuple[str, int], PartitionMark] = {}

    def of(self, topic: str, partition: int) -> PartitionMark:
        """The mark of one partition (``start`` and ``finish`` each record on it)."""
        mark = self._marks.get((topic, partition))
        if mark is None:
            mark = self._marks[topic, partition] = PartitionMark(
                self.directory / f"{topic}-{partition}"
            )
        return mark

    def close(self) -> None:
        for mark in self._marks.values():
            mark.close()
        self._marks.clear()
