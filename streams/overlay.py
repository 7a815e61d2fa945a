"""A faust table seen through commit windows: reads see the windows' own writes, which reach
the table (and its changelog) only when their window commits, after Kafka has its outputs.

While one window commits, the next is already being handled: the open window's changes sit
on top of the sealed ones still committing, and those on top of the table. Sealed changes are
written in the order they were sealed.

Table keys are a pseudonym's bytes, which is also what the changelog holds after a recovery.
"""

from __future__ import annotations

from collections import deque
from collections.abc import MutableMapping
from typing import Any

Changes = dict[str, bytes | None]  # key -> new value; None deletes the key


class TableOverlay:
    def __init__(self, table: MutableMapping[Any, Any]) -> None:
        self.table = table
        self.pending: Changes = {}  # the open window's
        self._sealed: deque[Changes] = deque()  # oldest first, each waiting for its commit

    def get(self, key: str) -> bytes | None:
        if key in self.pending:
            return self.pending[key]
        for changes in reversed(self._sealed):
            if key in changes:
                return changes[key]
        value: bytes | None = self.table.get(key.encode())
        return value

    def set(self, key: str, value: bytes | None) -> None:
        """Stage a value; None deletes the key."""
        self.pending[key] = value

    def seal(self) -> Changes:
        """The open window's changes, closed; later ``set``s go to a new window."""
        sealed, self.pending = self.pending, {}
        self._sealed.append(sealed)
        return sealed

    def write(self, sealed: Changes) -> None:
        """Write the oldest sealed changes to the table (Kafka has their window's outputs)."""
        if not self._sealed or self._sealed[0] is not sealed:
            raise RuntimeError("sealed changes must be written in the order they were sealed")
        for key, value in sealed.items():
            if value is None:
                self.table.pop(key.encode(), None)
            else:
                self.table[key.encode()] = value
        self._sealed.popleft()
