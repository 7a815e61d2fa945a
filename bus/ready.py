"""Ready files: how a component without an HTTP health endpoint says it is ready to work.

The component removes its file when it starts (one left by a killed run must not look ready),
writes it once it can do its work (its topics exist, its consumer has its partitions, its
tables are recovered), and removes it when it stops. A supervisor (``ungebus run``, a compose
healthcheck) waits for the file; ``ungebus run`` also ignores one older than the process it
started. Where each file lives: :mod:`bus.services`.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path


class ReadyFile:
    """One process's ready file; :meth:`clear` at start, :meth:`mark` once ready."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def of_this_process(cls, path: Path) -> ReadyFile:
        """This process's ready file: cleared now, and again when the process exits (but
        for ``os._exit`` or SIGKILL: a supervisor ignores a file older than the process)."""
        ready = cls(path)
        ready.clear()
        atexit.register(ready.clear)
        return ready

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def mark(self) -> None:
        """Write the file (atomically: a reader never sees it half written)."""
        if self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_text(f"{os.getpid()}\n")
        tmp.replace(self.path)

    async def mark_when_started(self) -> None:
        """:meth:`mark`, as a faust app task: faust starts those once its tables are recovered."""
        self.mark()

    def written_since(self, after: float) -> bool:
        """Written at or after ``after`` (a ``time.time()``): not a file from an earlier run."""
        try:
            return self.path.stat().st_mtime >= after
        except FileNotFoundError:
            return False
