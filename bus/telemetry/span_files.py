"""The local span files (``var/traces``, when no OTLP endpoint is set), kept from filling a disk.

Each process writes ``<service>-<pid>.jsonl``. When that file passes its size limit it becomes
``<service>-<pid>.previous.jsonl`` (replacing an older one) and a new file starts, so a process
keeps at most twice the limit. Files nobody has written to for some days are removed when a
component starts. ``ungebus trace`` reads every ``*.jsonl`` file, the previous ones too.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

PREVIOUS = ".previous"


class RotatingSpanFile(io.TextIOBase):
    """A text file for the span exporter's thread (the only writer), rotated by size."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self._path = path
        self._previous = path.with_name(f"{path.stem}{PREVIOUS}{path.suffix}")
        self._max_bytes = max_bytes
        self._file = path.open("a", encoding="utf-8")
        self._size = path.stat().st_size

    def write(self, text: str) -> int:
        written = self._file.write(text)
        self._size += len(text.encode("utf-8")) if not text.isascii() else len(text)
        if self._size >= self._max_bytes:
            self._rotate()
        return written

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        super().close()  # flushes first
        self._file.close()

    def _rotate(self) -> None:
        self._file.close()
        self._path.replace(self._previous)
        self._file = self._path.open("a", encoding="utf-8")
        self._size = 0


def remove_stale(directory: Path, keep_days: float, now: float | None = None) -> list[Path]:
    """Remove the span files in ``directory`` not written to for ``keep_days``; return them."""
    cutoff = (time.time() if now is None else now) - keep_days * 86_400
    removed = []
    for path in directory.glob("*.jsonl"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # another component removed it first
            continue
    return sorted(removed)
